package lambdart

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Runtime API header names, as aws-lambda-go's client uses them.
const (
	headerRequestID          = "Lambda-Runtime-Aws-Request-Id"
	headerDeadlineMS         = "Lambda-Runtime-Deadline-Ms"
	headerTraceID            = "Lambda-Runtime-Trace-Id"
	headerInvokedFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	headerErrorType          = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody         = "Lambda-Runtime-Function-Error-Body"
)

// routes is the Runtime API (2018-06-01). Unknown paths get 404 and wrong
// methods 405 from the mux.
func (inst *instance) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", inst.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", inst.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", inst.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", inst.handleInitError)
	return mux
}

// handleNext is the long poll for the next event. The first call ends the
// init phase; a later call while an event is unanswered fails that event.
func (inst *instance) handleNext(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	inst.mu.Lock()
	if inst.reportedInit != nil || inst.initTimedOut {
		inst.mu.Unlock()
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition", "init has failed, the runtime must exit")
		return
	}
	first := !inst.isReady
	if first {
		inst.isReady = true
		inst.initDuration = now.Sub(inst.started)
		inst.timer.Stop()
	}
	prev := inst.current
	inst.mu.Unlock()
	if first {
		inst.rt.recordInit(inst.initDuration)
		close(inst.ready)
	}
	if prev != nil {
		inst.complete(prev, &Result{Error: &FunctionError{
			Type:    ErrorTypeNoResponse,
			Message: fmt.Sprintf("RequestId: %s Error: the runtime asked for the next event without answering this one", prev.id),
		}}, nil)
	}

	select {
	case inv := <-inst.nextCh:
		inst.mu.Lock()
		inst.current = inv
		inst.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set(headerRequestID, inv.id)
		h.Set(headerDeadlineMS, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set(headerInvokedFunctionARN, inst.rt.arn)
		h.Set(headerTraceID, inv.traceID)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-req.Context().Done():
	case <-inst.exited:
	}
}

// lookup returns the unanswered invocation with the id in the path, or
// answers 400 InvalidRequestID as the real API does.
func (inst *instance) lookup(w http.ResponseWriter, req *http.Request) (*invocation, bool) {
	id := req.PathValue("id")
	inst.mu.Lock()
	cur := inst.current
	inst.mu.Unlock()
	if cur == nil || cur.id != id {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return nil, false
	}
	return cur, true
}

// readBody reads a body of at most MaxResponseBytes; tooLarge reports a
// larger one.
func readBody(req *http.Request) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(req.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, false, err
	}
	return body, len(body) > MaxResponseBytes, nil
}

// rejectTooLarge fails inv with Function.ResponseSizeTooLarge and answers 413.
func (inst *instance) rejectTooLarge(w http.ResponseWriter, inv *invocation) {
	inst.complete(inv, &Result{Error: &FunctionError{
		Type:    ErrorTypeResponseTooLarge,
		Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponseBytes),
	}}, nil)
	writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxResponseBytes))
}

// handleResponse records a successful answer.
func (inst *instance) handleResponse(w http.ResponseWriter, req *http.Request) {
	inv, ok := inst.lookup(w, req)
	if !ok {
		return
	}
	body, tooLarge, err := readBody(req)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequest", "read response body: "+err.Error())
		return
	}
	if tooLarge {
		inst.rejectTooLarge(w, inv)
		return
	}
	res := &Result{Payload: body, ContentType: req.Header.Get("Content-Type")}
	// aws-lambda-go reports a failure to read a streamed response in trailers.
	if typ := req.Trailer.Get(headerErrorType); typ != "" {
		doc, _ := base64.StdEncoding.DecodeString(req.Trailer.Get(trailerErrorBody))
		fe := parseFunctionError(doc, typ)
		res = &Result{Payload: fe.document(), Error: fe}
	}
	if !inst.complete(inv, res, nil) {
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition", "the invocation is already complete")
		return
	}
	writeAccepted(w)
}

// handleError records a function error.
func (inst *instance) handleError(w http.ResponseWriter, req *http.Request) {
	inv, ok := inst.lookup(w, req)
	if !ok {
		return
	}
	body, tooLarge, err := readBody(req)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequest", "read error body: "+err.Error())
		return
	}
	if tooLarge {
		inst.rejectTooLarge(w, inv)
		return
	}
	fe := parseFunctionError(body, req.Header.Get(headerErrorType))
	payload := body
	if !json.Valid(body) {
		payload = fe.document()
	}
	if !inst.complete(inv, &Result{Payload: payload, Error: fe}, nil) {
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition", "the invocation is already complete")
		return
	}
	writeAccepted(w)
}

// handleInitError records an init failure reported by the runtime. Lambda
// then resets the environment: the process gets initErrorGrace to exit by
// itself (so its last output is captured) before it is killed.
func (inst *instance) handleInitError(w http.ResponseWriter, req *http.Request) {
	body, tooLarge, err := readBody(req)
	if err != nil || tooLarge {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequest", "init error body is unreadable or larger than the payload limit")
		return
	}
	fe := parseFunctionError(body, req.Header.Get(headerErrorType))
	inst.mu.Lock()
	if inst.isReady || inst.reportedInit != nil || inst.initTimedOut {
		inst.mu.Unlock()
		writeAPIError(w, http.StatusForbidden, "InvalidStateTransition", "init error is only accepted once, during the init phase")
		return
	}
	inst.reportedInit = fe
	inst.timer.Stop()
	inst.mu.Unlock()
	writeAccepted(w)
	time.AfterFunc(initErrorGrace, func() {
		inst.kill()
	})
}

// parseFunctionError reads an error document {errorType, errorMessage,
// stackTrace}; headerType fills in a missing type.
func parseFunctionError(body []byte, headerType string) *FunctionError {
	fe := &FunctionError{HeaderType: headerType}
	var doc struct {
		Type       string          `json:"errorType"`
		Message    string          `json:"errorMessage"`
		StackTrace json.RawMessage `json:"stackTrace"`
	}
	if err := json.Unmarshal(body, &doc); err == nil {
		fe.Type, fe.Message, fe.StackTrace = doc.Type, doc.Message, doc.StackTrace
	} else {
		fe.Message = strings.TrimSpace(string(body))
	}
	if fe.Type == "" {
		fe.Type = headerType
	}
	if fe.Type == "" {
		fe.Type = ErrorTypeUnhandled
	}
	return fe
}

// writeAccepted answers 202 {"status":"OK"} like the real API.
func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
}

// writeAPIError answers with the API's error document.
func writeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}
