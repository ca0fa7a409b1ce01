package nxcloud_test

import (
	"context"
	"fmt"
	"log"

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
