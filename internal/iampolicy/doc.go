// Package iampolicy proves the template's least privilege locally: it reads
// the IAM policies template.yaml grants each function and checks them
// against what the functions do.
//
// Load reads every AWS::Serverless::Function of the template with goformation
// and resolves its Policies (Evaluate: !Sub with the pseudo parameters,
// !If on the conditions, !Ref of parameters and resources, !Select and
// !Split) for a local run: the media bucket's name, which the template builds
// from AWS::AccountId, AWS::Region and the stack id, names the local bucket
// (ARNs in S3's and MinIO's form, arn:aws:s3:::bucket/key), and !Ref of the
// secret is the local secret's ARN. Policy.S3 is the document a MinIO user
// gets (MinIO evaluates the same IAM policy language), Policy.Allows the
// decision for any action.
//
// MinIO is more lenient than S3 in a few places (s3:GetObjectVersion implies
// s3:GetObject there, a version's tags need only s3:GetObjectTagging,
// s3:ListBucket stands in for s3:ListBucketVersions), so the decision that
// counts is S3's: S3Request maps each S3 request a function makes to the IAM
// actions S3 authorizes it with, a Ledger records them per function, and
// Ledger.Check reports every access a policy does not grant and every grant
// no recorded access needs.
package iampolicy
