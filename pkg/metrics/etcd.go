package metrics

import (
	"context"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Etcd times the requests the scheduler makes of etcd.
type Etcd struct {
	duration *prometheus.HistogramVec
}

func newEtcd(reg prometheus.Registerer) *Etcd {
	e := &Etcd{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mysos_etcd_request_duration_seconds", Help: "etcd requests (unary gRPC calls), by method (Range, Txn, Put, ...) and gRPC code.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
	}, []string{"method", "code"})}
	reg.MustRegister(e.duration)
	return e
}

// Interceptor is a gRPC client interceptor that times every unary call;
// give it to the etcd client's DialOptions.
func (e *Etcd) Interceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		e.duration.WithLabelValues(path.Base(method), status.Code(err).String()).Observe(time.Since(start).Seconds())
		return err
	}
}
