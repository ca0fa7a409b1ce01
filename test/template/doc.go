// Package template holds no code: its tests check the deployable stack
// (template.yaml, samconfig.toml, the Makefile and the events/ fixtures)
// against SPEC.md, so that a change to one of them that breaks the contract
// fails `make test` instead of a deployment.
//
// The template is read twice: with github.com/awslabs/goformation/v7, as a
// Go program consuming it would, and as plain YAML with the CloudFormation
// short-form tags (!Ref, !Sub, !If, ...) turned into their long form, for
// what goformation does not model (Globals.LoggingConfig, Fn::If, the
// OpenAPI body).
package template
