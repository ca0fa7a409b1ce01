// Package template holds no code: its tests check the deployable stack
// (template.yaml, samconfig.toml, the Makefile and the events/ fixtures)
// against SPEC.md, so that a change to one of them that breaks the contract
// fails `make test` instead of a deployment.
//
// The template is read with the intrinsic processor of
// github.com/awslabs/goformation/v7: as written (short-form tags in their long
// form), and evaluated for a deployment with chosen parameter values. What
// cfn-lint checks already (every Ref and GetAtt names something, every
// parameter and condition is used, the resources' schemas) is left to it:
// make validate, run by CI.
package template
