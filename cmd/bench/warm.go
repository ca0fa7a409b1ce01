package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

const opGetSecretValue = "GetSecretValue"

// apiEvent is the payload format 2.0 event API Gateway sends for method on
// /media/{id}?business_phone=phone.
func apiEvent(method, id string) ([]byte, error) {
	req := httptest.NewRequest(method, "https://abcdef1234.execute-api.us-east-1.amazonaws.com/media/"+id+"?business_phone="+phone, nil)
	req.Header.Set("Accept", "application/json")
	ev := localstack.NewAPIGatewayEvent(req, localstack.Route{Method: method, Path: "/media/{mediaId}"}, map[string]string{"mediaId": id}, nil)
	return json.Marshal(ev)
}

// invokeOK invokes rt with payload and fails unless the function answered
// HTTP 200.
func invokeOK(ctx context.Context, rt *lambdart.Runtime, payload []byte) (*lambdart.Result, error) {
	res, err := rt.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, fmt.Errorf("%s: %s", res.Error.Type, res.Error.Message)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		return nil, fmt.Errorf("answer is not an API Gateway v2 response: %.200s", res.Payload)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("function answered %d: %.300s", resp.StatusCode, resp.Body)
	}
	return res, nil
}

// startFunction starts one execution environment of the function id.
func (r *runner) startFunction(ctx context.Context, id string, extraEnv ...string) (*lambdart.Runtime, error) {
	return lambdart.Start(ctx, lambdart.Function{Name: id, Path: r.hostBin[id], Env: r.functionEnv(extraEnv...), Timeout: 15 * time.Second})
}

// warm measures warm get and delete invocations through the Runtime API,
// alternating with the same signed call made by hand with a plain
// http.Client, and counts the GetSecretValue calls.
func (r *runner) warm(ctx context.Context) error {
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	for _, fn := range []struct {
		id, method, action string
	}{
		{localstack.GetMediaFunction, http.MethodGet, nxcloud.ActionGetMedia},
		{localstack.DeleteMediaFunction, http.MethodDelete, nxcloud.ActionDeleteMedia},
	} {
		payload, err := apiEvent(fn.method, mediaID)
		if err != nil {
			return err
		}
		rt, err := r.startFunction(ctx, fn.id)
		if err != nil {
			return err
		}
		hello, err := r.startFunction(ctx, helloID)
		if err != nil {
			_ = rt.Close()
			return err
		}
		if _, err := hello.Invoke(ctx, payload); err != nil {
			_ = rt.Close()
			_ = hello.Close()
			return err
		}
		calls0 := r.st.Secrets.Calls(opGetSecretValue)
		start := time.Now()
		first, err := invokeOK(ctx, rt, payload) // the cold invocation: secret fetch, new connection
		if err != nil {
			_ = rt.Close()
			return fmt.Errorf("%s: first invocation: %w", fn.id, err)
		}
		plain := func() (time.Duration, error) {
			t0 := time.Now()
			req, err := bench.NewJSONRequest(ctx, r.nxURL, r.cred, nxcloud.MD5, fn.action, phone, mediaID, t0)
			if err != nil {
				return 0, err
			}
			_, err = bench.Do(hc, req)
			return time.Since(t0), err
		}
		if _, err := plain(); err != nil { // warm the plain client's connection too
			_ = rt.Close()
			return fmt.Errorf("plain %s: %w", fn.action, err)
		}
		var inv, dur, pl, hl []float64
		conns0 := r.nxConns.Load()
		for i := 0; i < r.plan.warmInvokes; i++ {
			t0 := time.Now()
			res, err := invokeOK(ctx, rt, payload)
			d := time.Since(t0)
			if err != nil {
				_ = rt.Close()
				return fmt.Errorf("%s: invocation %d: %w", fn.id, i+2, err)
			}
			inv = append(inv, us(d))
			dur = append(dur, us(res.Duration))
			p, err := plain()
			if err != nil {
				_ = rt.Close()
				return fmt.Errorf("plain %s: %w", fn.action, err)
			}
			pl = append(pl, us(p))
			t0 = time.Now()
			hres, err := hello.Invoke(ctx, payload)
			if err == nil && hres.Error != nil {
				err = fmt.Errorf("%s: %s", hres.Error.Type, hres.Error.Message)
			}
			if err != nil {
				_ = rt.Close()
				_ = hello.Close()
				return fmt.Errorf("hello world invocation: %w", err)
			}
			hl = append(hl, us(time.Since(t0)))
		}
		elapsed := time.Since(start)
		conns := r.nxConns.Load() - conns0
		calls := r.st.Secrets.Calls(opGetSecretValue) - calls0
		_ = hello.Close()
		if err := rt.Close(); err != nil {
			return err
		}
		r.rep.warm = append(r.rep.warm, warmRow{
			id: fn.id, invoke: bench.Summarize(inv), duration: bench.Summarize(dur), plain: bench.Summarize(pl),
			first: us(first.Duration), invocations: r.plan.warmInvokes + 1, secretCalls: calls, elapsed: elapsed,
			hello: bench.Summarize(hl), newConns: conns,
		})
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// secrets measures the credential cache: GetSecretValue calls over a run of
// invocations with a short TTL, and the first invocation's latency with the
// Secrets Manager endpoint answering at once and after 100 ms.
func (r *runner) secrets(ctx context.Context) error {
	payload, err := apiEvent(http.MethodGet, mediaID)
	if err != nil {
		return err
	}
	// Short TTL: one fetch per TTL, whatever the rate.
	rt, err := r.startFunction(ctx, localstack.GetMediaFunction, "NXCLOUD_SECRET_TTL="+r.plan.ttl.String())
	if err != nil {
		return err
	}
	calls0 := r.st.Secrets.Calls(opGetSecretValue)
	start := time.Now()
	n := 0
	for time.Since(start) < r.plan.ttlRun {
		if _, err := invokeOK(ctx, rt, payload); err != nil {
			_ = rt.Close()
			return err
		}
		n++
	}
	elapsed := time.Since(start)
	calls := r.st.Secrets.Calls(opGetSecretValue) - calls0
	if err := rt.Close(); err != nil {
		return err
	}
	r.rep.ttl = ttlRow{ttl: r.plan.ttl, elapsed: elapsed, invocations: n, calls: calls,
		expected: int(math.Floor(elapsed.Seconds() / r.plan.ttl.Seconds()))}

	// Delay: first invocation of fresh environments, with and without.
	delays := []time.Duration{0, 100 * time.Millisecond}
	first := map[time.Duration][]float64{}
	second := map[time.Duration][]float64{}
	callsBy := map[time.Duration]int{}
	defer r.st.Secrets.SetDelay(0)
	for i := 0; i < r.plan.delayReps; i++ {
		for _, d := range delays {
			r.st.Secrets.SetDelay(d)
			rt, err := r.startFunction(ctx, localstack.GetMediaFunction)
			if err != nil {
				return err
			}
			c0 := r.st.Secrets.Calls(opGetSecretValue)
			t0 := time.Now()
			if _, err := invokeOK(ctx, rt, payload); err != nil {
				_ = rt.Close()
				return err
			}
			first[d] = append(first[d], ms(time.Since(t0)))
			t1 := time.Now()
			if _, err := invokeOK(ctx, rt, payload); err != nil {
				_ = rt.Close()
				return err
			}
			second[d] = append(second[d], ms(time.Since(t1)))
			callsBy[d] += r.st.Secrets.Calls(opGetSecretValue) - c0
			if err := rt.Close(); err != nil {
				return err
			}
		}
	}
	for _, d := range delays {
		r.rep.delay = append(r.rep.delay, delayRow{delay: d, first: bench.Summarize(first[d]), second: bench.Summarize(second[d]),
			callsPerStart: float64(callsBy[d]) / float64(r.plan.delayReps)})
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
