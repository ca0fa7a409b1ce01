// Package localsm is a local AWS Secrets Manager endpoint for tests, the local
// run and benchmarks. It speaks the service's wire protocol (AWS JSON 1.1:
// POST / with X-Amz-Target: secretsmanager.<Operation> and Content-Type
// application/x-amz-json-1.1), so the real AWS SDK client talks to it
// unchanged through BaseEndpoint or AWS_ENDPOINT_URL_SECRETS_MANAGER.
//
// One operation, GetSecretValue, with the request and response members of the
// Secrets Manager API reference
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/); tests
// store and rotate values with [Server.Put] and [Server.PutBinary]. Secrets
// are addressed by name, by full ARN
// (arn:aws:secretsmanager:<region>:000000000000:secret:<name>-AbCdEf) or by
// partial ARN (without the six-character suffix), as AWS accepts. Versions
// carry the staging labels AWSCURRENT and AWSPREVIOUS as AWS moves them.
//
// Errors are answered as AWS answers them: an HTTP status, the header
// X-Amzn-ErrorType and the body {"__type": "<Code>", "message": "..."}, e.g.
// 400 ResourceNotFoundException "Secrets Manager can't find the specified
// secret.", 400 UnknownOperationException for an unknown target, 400
// SerializationException for a body that is not JSON. Choices where the
// reference is silent, kept simple and checked against what the SDK decodes:
//   - Authentication: the request must carry an Authorization header of the
//     AWS Signature Version 4 form ("AWS4-HMAC-SHA256 Credential=...,
//     SignedHeaders=..., Signature=..."). The signature itself is not
//     verified (any static credentials work). Without the header the answer
//     is 400 MissingAuthenticationTokenException, with another scheme or an
//     incomplete header 400 IncompleteSignatureException; the SDK decodes
//     both as a smithy.GenericAPIError carrying that code.
//   - A method other than POST is answered 405 with an
//     UnknownOperationException body.
//
// Fault injection for tests: [Server.SetDelay] delays every answer,
// [Server.FailNext] makes the next n calls fail with a chosen error code and
// HTTP status (ThrottlingException 400 and InternalServiceError 500 are
// retried by the SDK), and [Server.Calls] counts the calls per operation.
package localsm
