// Package secret supplies NXCloud credentials from AWS Secrets Manager.
//
// A [Provider] implements nxcloud.CredentialsProvider. It reads one secret
// whose SecretString is the JSON object
//
//	{"accessKey": "...", "accessSecret": "..."}
//
// and keeps the parsed credentials in memory for a TTL (NXCLOUD_SECRET_TTL,
// default 5m), so that a warm Lambda function calls Secrets Manager about once
// per TTL. Concurrent callers share one in-flight GetSecretValue call.
//
// Errors are typed so that callers can tell a configuration problem from an
// availability problem:
//   - [*MalformedError]: the secret exists but its value is not the JSON above
//     (a field missing or empty, not JSON, SecretBinary only). Fix the secret.
//   - [*UnavailableError] (errors.Is(err, [ErrUnavailable])): the
//     GetSecretValue call failed. The SDK's error stays in the chain, so
//     errors.As finds the smithy.APIError or the typed Secrets Manager
//     exception.
//
// Neither the secret's value nor the access key ever appears in an error
// message or a log line written by this package.
package secret
