package localstack

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

// pool is a function's execution environments: up to size Runtimes, each
// single-concurrency like a Lambda container, started on demand.
type pool struct {
	fn    lambdart.Function
	size  int
	slots chan *lambdart.Runtime

	mu      sync.Mutex
	started int
	all     []*lambdart.Runtime
}

// warm starts the first execution environment so that an init failure shows
// at once.
func (p *pool) warm(ctx context.Context) error {
	rt, err := p.start(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.started++
	p.mu.Unlock()
	p.slots <- rt
	return nil
}

func (p *pool) start(ctx context.Context) (*lambdart.Runtime, error) {
	rt, err := lambdart.Start(ctx, p.fn)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.all = append(p.all, rt)
	p.mu.Unlock()
	return rt, nil
}

func (p *pool) invoke(ctx context.Context, payload []byte) (*lambdart.Result, error) {
	var rt *lambdart.Runtime
	select {
	case rt = <-p.slots:
	default:
		p.mu.Lock()
		grow := p.started < p.size
		if grow {
			p.started++
		}
		p.mu.Unlock()
		if grow {
			var err error
			if rt, err = p.start(ctx); err != nil {
				p.mu.Lock()
				p.started--
				p.mu.Unlock()
				return nil, err
			}
		} else {
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

// peek returns the first execution environment, if any.
func (p *pool) peek() *lambdart.Runtime {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.all) == 0 {
		return nil
	}
	return p.all[0]
}

func (p *pool) close() {
	p.mu.Lock()
	all := p.all
	p.all = nil
	p.mu.Unlock()
	for _, rt := range all {
		_ = rt.Close()
	}
}

// syncWriter serialises writes from the parts of the stack.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// linePrefixer writes whole lines, each prefixed with a component name.
type linePrefixer struct {
	mu     sync.Mutex
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
			break
		}
		line := l.prefix + string(l.buf[:i+1])
		l.buf = l.buf[i+1:]
		if _, err := io.WriteString(l.w, line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}
