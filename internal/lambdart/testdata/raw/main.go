// Command raw is a hand-written Lambda runtime (no aws-lambda-go) used by
// package lambdart's tests to exercise protocol edges: the event body names
// what to do with it.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"

// post sends body to url and returns the status code.
func post(url, contentType, errorType, body string) int {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", contentType)
	if errorType != "" {
		req.Header.Set("Lambda-Runtime-Function-Error-Type", errorType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raw:", err)
		os.Exit(2)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func main() {
	// RAW_STUBBORN makes the process ignore SIGTERM and leave a child
	// behind, to check that Close still leaves nothing running.
	if os.Getenv("RAW_STUBBORN") != "" {
		signal.Ignore(syscall.SIGTERM)
		child := exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "raw: start child:", err)
			os.Exit(2)
		}
		fmt.Println("raw: child pid", child.Process.Pid)
	}
	last := "none"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "raw:", err)
			os.Exit(2)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		switch string(b) {
		case "plain-error":
			post(base+id+"/error", "text/plain", "Runtime.Custom", "something broke")
		case "header-type":
			post(base+id+"/error", "application/json", "Function.FromHeader", `{"errorMessage":"typed by header"}`)
		case "no-type":
			post(base+id+"/error", "application/json", "", `{"errorMessage":"untyped"}`)
		case "double":
			first := post(base+id+"/response", "application/json", "", `"first"`)
			second := post(base+id+"/response", "application/json", "", `"second"`)
			last = fmt.Sprintf("double: %d %d", first, second)
		case "skip":
			// ask for the next event without answering this one
		case "status":
			post(base+id+"/response", "text/plain", "", last)
		default:
			post(base+id+"/response", "text/plain", "", "raw: "+string(b))
		}
	}
}
