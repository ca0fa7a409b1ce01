package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

func (r *runner) sizes(ctx context.Context) error {
	t := r.table("Each bootstrap built as shipped, `make build-<LogicalId> GOARCH=<arch>` (static, stripped, `-tags lambda.norpc`); the floor is `bench/hello`, an aws-lambda-go hello world built by the same recipe.",
		"function", "arch", "size", "hello", "ratio")
	for _, arch := range []string{"arm64", "amd64"} {
		sizes := map[string]int64{}
		for _, id := range append([]string{helloID}, functionIDs...) {
			p, err := r.build(ctx, id, arch)
			if err != nil {
				return err
			}
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			sizes[id] = st.Size()
		}
		for _, id := range functionIDs {
			// The HTTP functions route with net/http's ServeMux (about
			// 130 KB); the S3 functions link the S3 client.
			limit, ratio := 1.65, float64(sizes[id])/float64(sizes[helloID])
			if id == localstack.UploadTemplateFileFunction || id == localstack.UploadMediaFunction || id == localstack.ArchiveMediaFunction {
				limit = 2
			}
			t.row(short[id], arch, fmt.Sprintf("%.2f MiB", float64(sizes[id])/mib), fmt.Sprintf("%.2f MiB", float64(sizes[helloID])/mib), fmt.Sprintf("%.2fx", ratio))
			r.target(fmt.Sprintf("%s %s binary vs hello", short[id], arch), fmt.Sprintf("%.2fx", ratio), fmt.Sprintf("<= %.2fx", limit), ratio <= limit)
		}
	}
	return nil
}

// start starts one execution environment of id under the Runtime API, with
// the environment and credentials of the function id (changed by env, as
// localstack.Stack.FunctionEnv takes them); a floor (bench/peer,
// bench/hello) gets the benchmark's upload function's (uploadEnv), as it
// reads what that reads.
func (r *runner) start(ctx context.Context, id string, env ...string) (*lambdart.Runtime, error) {
	role := id
	switch _, fn := localstack.Functions[id]; {
	case id == archivePeerID: // the archive's floor writes where the archive does
		role = localstack.ArchiveMediaFunction
	case !fn: // the upload's floor, and hello, read what the upload function reads
		role, env = localstack.UploadTemplateFileFunction, append(slices.Clone(uploadEnv), env...)
	}
	env, err := r.st.FunctionEnv(ctx, role, env...)
	if err != nil {
		return nil, err
	}
	return lambdart.Start(ctx, lambdart.Function{Name: id, Path: r.bin[id], Env: env, Timeout: 15 * time.Minute})
}

func (r *runner) inits(ctx context.Context) error {
	ms := map[string][]float64{}
	ids := append([]string{helloID}, functionIDs...)
	for range r.initStarts {
		for _, id := range ids { // interleaved: a load change hits every binary alike
			rt, err := r.start(ctx, id)
			if err != nil {
				return err
			}
			ms[id] = append(ms[id], float64(rt.LastInitDuration())/1e6)
			if err := rt.Close(); err != nil {
				return err
			}
		}
	}
	t := r.table(fmt.Sprintf("Exec to the first `GET /runtime/invocation/next` under `internal/lambdart` (the local Lambda Runtime API), each binary started %d times in turn with the local stack's environment, on this host (%s/%s).", r.initStarts, runtime.GOOS, runtime.GOARCH),
		"binary", "init (ms)", "p50 - hello p50")
	hello := median(ms[helloID])
	for _, id := range ids {
		diff := median(ms[id]) - hello
		t.row(short[id], dist(ms[id], "%.2f"), fmt.Sprintf("%+.2f ms", diff))
		if id != helloID {
			r.target(short[id]+" init p50 - hello init p50", fmt.Sprintf("%+.2f ms (%.2f vs %.2f ms)", diff, median(ms[id]), hello), "<= 5 ms", diff <= 5)
		}
	}
	return nil
}

// apiEvent is the payload 2.0 event API Gateway sends for method on
// /media/{mediaID}.
func apiEvent(method string) []byte {
	return localstack.MediaEvent(method, "https://abcdef1234.execute-api.us-east-1.amazonaws.com/media/"+mediaID+"?business_phone="+phone)
}

// invokeOK invokes rt and fails unless the function answered HTTP 200.
func invokeOK(ctx context.Context, rt *lambdart.Runtime, payload []byte) error {
	res, err := rt.Invoke(ctx, payload)
	if err == nil {
		if resp, perr := localstack.ParseAPIGatewayResponse(res.Payload); perr != nil || res.Error != nil || resp.Status != http.StatusOK {
			err = fmt.Errorf("%s answered %s", rt.Name(), res.Payload)
		}
	}
	return err
}

// timed appends the µs f takes to xs.
func timed(xs *[]float64, f func() error) error {
	t0 := time.Now()
	err := f()
	*xs = append(*xs, float64(time.Since(t0))/1e3)
	return err
}

// warm times warm get and delete invocations through the Runtime API, in turn
// with the same signed NXCloud call made with a plain http.Client and with the
// hello world invoked through the same Runtime API, and counts the
// GetSecretValue calls; then a run with a 1 s credential TTL.
func (r *runner) warm(ctx context.Context) error {
	t := r.table(fmt.Sprintf("A payload 2.0 event in, the response out, through the Runtime API (`lambdart.Invoke`, timed by the caller): %d warm invocations after a cold one, against the local NXCloud of the benchmark process. In turn with each, the floor: the same signed NXCloud request made by the benchmark process with a plain keep-alive `http.Client` (`bench.NewJSONRequest`); and the hello world invoked with the same event through the same Runtime API (the process hop any function pays).", r.warmInvokes),
		"function", "invoke (µs)", "plain call (µs)", "hello world invoke (µs)", "ratio to plain, p50")
	secrets := r.table("`GetSecretValue` calls counted by the local Secrets Manager (`internal/localsm`).", "run", "invocations", "duration", "GetSecretValue calls")
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	for _, fn := range []struct{ id, method, action string }{
		{localstack.GetMediaFunction, http.MethodGet, nxcloud.ActionGetMedia},
		{localstack.DeleteMediaFunction, http.MethodDelete, nxcloud.ActionDeleteMedia},
	} {
		payload := apiEvent(fn.method)
		rt, err := r.start(ctx, fn.id)
		if err != nil {
			return err
		}
		defer rt.Close()
		hello, err := r.start(ctx, helloID)
		if err != nil {
			return err
		}
		defer hello.Close()
		invoke := func() error { return invokeOK(ctx, rt, payload) }
		plain := func() error {
			req, err := bench.NewJSONRequest(ctx, r.nxURL, r.cred, fn.action, phone, mediaID)
			if err == nil {
				err = bench.Do(hc, req)
			}
			return err
		}
		invokeHello := func() error {
			res, err := hello.Invoke(ctx, payload)
			if err == nil && res.Error != nil {
				err = fmt.Errorf("hello world: %s", res.Payload)
			}
			return err
		}
		calls0, start := r.st.Secrets.Calls(localsm.OpGetSecretValue), time.Now()
		var inv, pl, hl []float64
		for i := range r.warmInvokes + 1 { // the first (cold: the secret fetched, connections opened) is not kept
			if err := errors.Join(timed(&inv, invoke), timed(&pl, plain), timed(&hl, invokeHello)); err != nil {
				return err
			}
			if i == 0 {
				inv, pl, hl = nil, nil, nil
			}
		}
		elapsed, calls := time.Since(start), r.st.Secrets.Calls(localsm.OpGetSecretValue)-calls0
		ratio := median(inv) / median(pl)
		t.row(short[fn.id], dist(inv, "%.0f"), dist(pl, "%.0f"), dist(hl, "%.0f"), fmt.Sprintf("%.2fx", ratio))
		r.target(short[fn.id]+" warm invocation p50 vs plain call p50", fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", ratio, median(inv), median(pl)), "<= 1.5x", ratio <= 1.5)
		want := int(math.Ceil(elapsed.Minutes() / 5))
		secrets.row(short[fn.id]+", the warm run above (default TTL 5m)", r.warmInvokes+1, fmt.Sprintf("%.1f s", elapsed.Seconds()), calls)
		r.target(fmt.Sprintf("%s GetSecretValue calls over %d invocations (TTL 5m)", short[fn.id], r.warmInvokes+1), strconv.Itoa(calls), fmt.Sprintf("1 per TTL (%d)", want), calls == want)
	}

	rt, err := r.start(ctx, localstack.GetMediaFunction, "NXCLOUD_SECRET_TTL=1s")
	if err != nil {
		return err
	}
	defer rt.Close()
	payload, n := apiEvent(http.MethodGet), 0
	calls0, start := r.st.Secrets.Calls(localsm.OpGetSecretValue), time.Now()
	for ; time.Since(start) < r.ttlRun; n++ {
		if err := invokeOK(ctx, rt, payload); err != nil {
			return err
		}
	}
	elapsed, calls := time.Since(start), r.st.Secrets.Calls(localsm.OpGetSecretValue)-calls0
	want := int(elapsed.Seconds())
	secrets.row("get, `NXCLOUD_SECRET_TTL=1s`, back to back", n, fmt.Sprintf("%.1f s", elapsed.Seconds()), calls)
	r.target(fmt.Sprintf("GetSecretValue calls with TTL 1s over %d invocations", n), strconv.Itoa(calls), fmt.Sprintf("1 per TTL (%d or %d)", want, want+1), calls == want || calls == want+1)
	return nil
}
