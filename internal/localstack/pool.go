package localstack

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

// pool is a function's execution environments: up to size Runtimes, each
// single-concurrency like a Lambda execution environment, started on
// demand.
type pool struct {
	fn    lambdart.Function
	size  int
	slots chan *lambdart.Runtime // the idle ones

	mu  sync.Mutex
	all []*lambdart.Runtime
}

// warm starts the first execution environment, so that an init failure
// shows at once.
func (p *pool) warm(ctx context.Context) error {
	rt, err := p.start(ctx)
	if err == nil {
		p.slots <- rt
	}
	return err
}

// start starts one more execution environment, unless there are size
// already (then it returns nil).
func (p *pool) start(ctx context.Context) (*lambdart.Runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.all) == p.size {
		return nil, nil
	}
	rt, err := lambdart.Start(ctx, p.fn)
	if err == nil {
		p.all = append(p.all, rt)
	}
	return rt, err
}

func (p *pool) invoke(ctx context.Context, payload []byte) (*lambdart.Result, error) {
	var rt *lambdart.Runtime
	select {
	case rt = <-p.slots:
	default:
		var err error
		if rt, err = p.start(ctx); err != nil {
			return nil, err
		}
		if rt == nil { // all busy: wait for one
			select {
			case rt = <-p.slots:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	defer func() { p.slots <- rt }()
	return rt.Invoke(ctx, payload)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rt := range p.all {
		_ = rt.Close()
	}
	p.all = nil
}

// linePrefixer writes whole lines to w, each prefixed; the writers of one
// stack share mu, so that lines never interleave.
type linePrefixer struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := l.prefix + string(l.buf[:i+1])
		l.buf = l.buf[i+1:]
		if _, err := io.WriteString(l.w, line); err != nil {
			return len(b), err
		}
	}
}
