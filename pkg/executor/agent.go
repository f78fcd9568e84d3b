package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// Agent is the executor's side of the v1 executor API: how calls reach the
// agent. Tests substitute a fake.
type Agent interface {
	// Subscribe sends a SUBSCRIBE call and returns the event stream once
	// the agent answered; closing the stream ends it.
	Subscribe(ctx context.Context, call *executor.Call) (EventStream, error)
	// Send sends any other call (UPDATE, MESSAGE) and returns once the
	// agent accepted it.
	Send(ctx context.Context, call *executor.Call) error
}

// EventStream is a subscription's events, in order.
type EventStream interface {
	// Next blocks until the next event, or returns the error that ended
	// the stream (io.EOF when the agent closed it).
	Next() (*executor.Event, error)
	Close() error
}

// DefaultCallTimeout bounds every HTTP call to the agent (for SUBSCRIBE:
// until the response starts).
const DefaultCallTimeout = 10 * time.Second

// APIPath is the executor API's path on the agent.
const APIPath = "/api/v1/executor"

type httpAgent struct {
	timeout    time.Duration
	sender     calls.Sender
	subscriber calls.Sender
}

// NewHTTPAgent is the Agent at endpoint (host:port, as in
// MESOS_AGENT_ENDPOINT), spoken to in protobuf through mesos-go's HTTP
// client; each call is bounded by timeout.
func NewHTTPAgent(endpoint string, timeout time.Duration) Agent {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	cli := httpcli.New(
		httpcli.Endpoint("http://"+endpoint+APIPath),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(timeout))),
	)
	return &httpAgent{
		timeout:    timeout,
		sender:     httpexec.NewSender(cli.Send),
		subscriber: httpexec.NewSender(cli.Send, httpcli.Close(true)),
	}
}

func (a *httpAgent) Send(ctx context.Context, call *executor.Call) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.sender.Send(ctx, calls.NonStreaming(call))
	if resp != nil {
		resp.Close()
	}
	return err
}

func (a *httpAgent) Subscribe(ctx context.Context, call *executor.Call) (EventStream, error) {
	// The stream outlives the call, so its context cannot carry a deadline;
	// a timer cancels it if the agent does not answer in time.
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(a.timeout, cancel)
	resp, err := a.subscriber.Send(ctx, calls.NonStreaming(call))
	if !timer.Stop() && err == nil {
		err = fmt.Errorf("SUBSCRIBE: no answer within %v", a.timeout)
	}
	if err != nil {
		if resp != nil {
			resp.Close()
		}
		cancel()
		return nil, err
	}
	return &httpStream{resp: resp, cancel: cancel}, nil
}

type httpStream struct {
	resp   mesos.Response
	cancel context.CancelFunc
	once   sync.Once
}

func (s *httpStream) Next() (*executor.Event, error) {
	var ev executor.Event
	if err := s.resp.Decode(&ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

func (s *httpStream) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.resp.Close()
	})
	return err
}
