// Package metrics writes the bundle's CloudWatch metrics in the Embedded
// Metric Format (EMF): each metric is a JSON log line with an "_aws" member
// that tells CloudWatch Logs which members are metrics and which are their
// dimensions, so the functions publish metrics without a single CloudWatch
// API call (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//
// The Recorder knows the bundle's metrics (uploads by outcome, bytes sent,
// NXCloud latency by action and code, credential refreshes, cold starts);
// the functions' wiring (pkg/app, the mains) hooks it to the upload
// pipeline's Result, to the NXCloud client's observer and to the Secrets
// Manager client, so that none of them knows about CloudWatch. Parse reads a
// line back, checking it against the specification.
package metrics
