// Package localsm is a local AWS Secrets Manager endpoint for the tests, the
// local run and the benchmarks, with the operation the bundle calls,
// GetSecretValue of a secret's current value, and the one its operators
// call, PutSecretValue (a rotation, as `aws secretsmanager put-secret-value`
// sends it), each by name or by full ARN
// (arn:aws:secretsmanager:us-east-1:000000000000:secret:<name>-AbCdEf). It
// speaks the service's wire protocol (AWS JSON 1.1: POST / with
// X-Amz-Target: secretsmanager.GetSecretValue), so the real SDK client and
// the aws CLI talk to it unchanged through BaseEndpoint,
// AWS_ENDPOINT_URL_SECRETS_MANAGER or --endpoint-url.
//
// Errors are answered as AWS answers them, which is what the SDK decodes: an
// HTTP status, the header X-Amzn-ErrorType and the body {"__type": "<Code>",
// "message": "..."}, e.g. 400 ResourceNotFoundException "Secrets Manager
// can't find the specified secret.". A request without a SigV4 Authorization
// header is 400 MissingAuthenticationTokenException (the signature itself is
// not verified). The access key id of the signature is the caller:
// [Server.SetAuthorizer] decides what each caller may do (the local run
// grants each function what its policy in template.yaml grants), and a
// refusal is AWS's AccessDeniedException.
//
// Tests store and rotate values with [Server.Put] and [Server.PutBinary],
// delay every answer with [Server.SetDelay], make the next calls fail with
// [Server.FailNext] (ThrottlingException 400 and InternalServiceError 500 are
// retried by the SDK) and count them with [Server.Calls].
package localsm
