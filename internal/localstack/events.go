package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

// serveWebhook receives MinIO's bucket notifications and queues them for the
// upload function, answering at once as S3 does for an asynchronous invoke.
func (s *Stack) serveWebhook(w http.ResponseWriter, r *http.Request) {
	var log struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxPayload)).Decode(&log); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// MinIO also files tag and retention changes under s3:ObjectCreated:*
	// (PutTagging, DeleteTagging, PutRetention, PutLegalHold); S3 does not,
	// so they are dropped: tagging an object must not trigger the function.
	var records []json.RawMessage
	for _, rec := range log.Records {
		var r struct {
			EventName string `json:"eventName"`
		}
		_ = json.Unmarshal(rec, &r)
		switch strings.TrimPrefix(r.EventName, "s3:") {
		case "ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload":
			records = append(records, rec)
		}
	}
	if len(records) > 0 {
		ev, _ := json.Marshal(map[string]any{"Records": records})
		s.Enqueue(ev)
	}
	w.WriteHeader(http.StatusOK)
}

// Enqueue delivers an S3 event to the upload function of its key's prefix
// asynchronously, as S3 does: with Lambda's retries, and the failure queue
// after the last one.
func (s *Stack) Enqueue(event []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.inflight++
	s.wg.Go(func() {
		s.deliver(event)
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	})
}

// functionFor is the upload function whose prefix the event's first key is
// under, as the bucket's notifications route them in the template.
func (s *Stack) functionFor(ev []byte) string {
	var e struct {
		Records []struct {
			S3 struct {
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if json.Unmarshal(ev, &e) == nil && len(e.Records) > 0 {
		if key, err := url.QueryUnescape(e.Records[0].S3.Object.Key); err == nil && strings.HasPrefix(key, s.MediaPrefix) {
			return UploadMediaFunction
		}
	}
	return UploadTemplateFileFunction
}

func (s *Stack) deliver(ev []byte) {
	fn := s.functionFor(ev)
	attempts := s.opts.MaxRetryAttempts + 1
	var last *lambdart.FunctionError
	var requestID string
	for i := 1; i <= attempts; i++ {
		if i > 1 {
			select {
			case <-time.After(s.opts.RetryDelay * time.Duration(i-1)):
			case <-s.closing:
				return
			}
		}
		res, err := s.Invoke(context.Background(), fn, ev)
		switch {
		case err != nil:
			last = &lambdart.FunctionError{Type: "Local.InvokeError", Message: err.Error()}
		case res.Error != nil:
			last, requestID = res.Error, res.RequestID
		default:
			return
		}
		s.progress("%s attempt %d/%d failed: %s: %s", fn, i, attempts, last.Type, last.Message)
	}
	f := FailedEvent{Version: "1.0", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), RequestPayload: ev}
	f.RequestContext.RequestID = requestID
	f.RequestContext.FunctionARN = lambdart.FunctionARN(fn) + ":$LATEST"
	f.RequestContext.Condition = "RetriesExhausted"
	f.RequestContext.ApproximateInvokeCount = attempts
	f.ResponseContext.StatusCode = http.StatusOK
	f.ResponseContext.ExecutedVersion = "$LATEST"
	f.ResponseContext.FunctionError = "Unhandled"
	f.ResponsePayload.ErrorMessage, f.ResponsePayload.ErrorType = last.Message, last.Type
	s.mu.Lock()
	s.failed = append(s.failed, f)
	s.mu.Unlock()
	s.progress("event sent to the failure queue after %d attempts", attempts)
}

// schedule invokes the sweep every period, as the template's Schedule event
// does, and prints each summary.
func (s *Stack) schedule(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		ev := fmt.Sprintf(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","time":%q,"detail":{}}`, time.Now().UTC().Format(time.RFC3339))
		res, err := s.Invoke(context.Background(), ReconcileFunction, []byte(ev))
		switch {
		case err != nil:
			s.progress("scheduled %s: %v", ReconcileFunction, err)
		case res.Error != nil:
			s.progress("scheduled %s failed: %s: %s", ReconcileFunction, res.Error.Type, res.Error.Message)
		default:
			s.progress("scheduled %s: %s", ReconcileFunction, res.Payload)
		}
	}
}
