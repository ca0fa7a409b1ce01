package nxcloud_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"path"
	"strings"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// ExampleClient_GetMedia fetches a media file's information from a local
// NXCloud (nxcloudtest). Against the real service, leave out WithBaseURL and
// pass the account's credentials.
func ExampleClient_GetMedia() {
	srv := nxcloudtest.NewServer(nxcloudtest.WithCredentials("my-access-key", "my-access-secret"))
	baseURL, err := srv.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/jpeg", FileName: "menu.jpg"})

	client, err := nxcloud.NewClient(
		nxcloud.WithBaseURL(baseURL),
		nxcloud.WithCredentials(nxcloud.StaticCredentials{AccessKey: "my-access-key", AccessSecret: "my-access-secret"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	media, err := client.GetMedia(context.Background(), "8615812341795", id)
	if err != nil {
		if apiErr, ok := nxcloud.AsAPIError(err); ok {
			log.Fatalf("NXCloud refused: code %d", apiErr.Code)
		}
		log.Fatal(err)
	}
	fmt.Println(media.MimeType, media.FileName)

	_, err = client.GetMedia(context.Background(), "8615812341795", "no-such-id")
	if apiErr, ok := nxcloud.AsAPIError(err); ok {
		fmt.Println("code", apiErr.Code, apiErr.IsParameter())
	}
	// Output:
	// image/jpeg menu.jpg
	// code 9000 true
}

// ExampleClient_UploadMedia uploads a file for WhatsApp messages to a local
// NXCloud (nxcloudtest) and reads it back by the id it got: the type and the
// size limit come from MessageMediaTypes, by the file's extension.
func ExampleClient_UploadMedia() {
	srv := nxcloudtest.NewServer(nxcloudtest.WithCredentials("my-access-key", "my-access-secret"), nxcloudtest.WithKeepContent(true))
	baseURL, err := srv.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := nxcloud.NewClient(
		nxcloud.WithBaseURL(baseURL),
		nxcloud.WithCredentials(nxcloud.StaticCredentials{AccessKey: "my-access-key", AccessSecret: "my-access-secret"}),
	)
	if err != nil {
		log.Fatal(err)
	}

	name, content := "invoice.txt", "Invoice 42: 3 coffees"
	ft, ok := nxcloud.MessageMediaTypes.ByExtension(path.Ext(name))
	if !ok || int64(len(content)) > ft.Limit(100<<20) { // MAX_UPLOAD_BYTES, 100 MiB by default
		log.Fatalf("NXCloud does not take %s for messages", name)
	}
	fmt.Println(ft.Kind, ft.MediaType, ft.MaxBytes)
	ctx := context.Background()
	id, err := client.UploadMedia(ctx, nxcloud.UploadInput{
		BusinessPhone: "8615812341795",
		Type:          ft.MediaType,
		FileName:      name,
		Size:          int64(len(content)),
		Body:          strings.NewReader(content),
	})
	if err != nil {
		log.Fatal(err)
	}

	// The id is what a message carries, and what getMedia and deleteMedia take.
	media, err := client.GetMedia(ctx, "8615812341795", id)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get(media.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(media.MimeType, media.FileName, string(body))
	if err := client.DeleteMedia(ctx, "8615812341795", id); err != nil {
		log.Fatal(err)
	}
	// Output:
	// document text/plain 104857600
	// text/plain invoice.txt Invoice 42: 3 coffees
}
