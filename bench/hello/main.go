// Command hello is the floor the function binaries are measured against: an
// aws-lambda-go hello world (lambda.Start of a trivial handler), built exactly
// like the functions (the Makefile's go build flags: static, stripped,
// -tags lambda.norpc). cmd/bench compares binary size and init time with it.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// event is whatever JSON object the function is given.
type event map[string]any

// response is the trivial answer.
type response struct {
	Message string `json:"message"`
}

func handle(context.Context, event) (response, error) {
	return response{Message: "hello"}, nil
}

func main() {
	lambda.Start(handle)
}
