// Command initfail is a test function for package lambdart whose init
// fails unless FOO is set. INITFAIL_MODE picks how it fails: "exit" prints
// to stderr and exits 1; "post" reports the error to the Runtime API's
// /runtime/init/error first, as some runtimes do; "hang" never finishes
// init.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	if os.Getenv("FOO") != "" {
		lambda.Start(func(context.Context) (string, error) { return "ok", nil })
		return
	}
	msg := "FOO: must be set"
	switch os.Getenv("INITFAIL_MODE") {
	case "post":
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		body := `{"errorType":"ConfigError","errorMessage":"` + msg + `"}`
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "initfail: post init error:", err)
			os.Exit(2)
		}
		resp.Body.Close()
		fmt.Fprintln(os.Stderr, "initfail: init error posted, status", resp.StatusCode)
		if os.Getenv("INITFAIL_STAY") != "" {
			time.Sleep(time.Hour) // wait to be killed
		}
		os.Exit(1)
	case "hang":
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stdout, "initfail: starting")
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}
