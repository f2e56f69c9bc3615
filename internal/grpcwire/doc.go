// Package grpcwire is a small gRPC transport for unary calls over HTTP/2,
// wire-compatible with every gRPC implementation (grpc-go, grpcio, ...).
//
// It exists for speed. The model runner calls every model twice per tick,
// one call at a time per model, with a few hundred bytes each way: grpc-go
// spends about 100 µs of CPU per such call on two cores (a writer goroutine,
// a reader goroutine, per-stream bookkeeping, retries, balancers), which made
// a 100-model fan-out cost 10 ms of CPU. A client that owns its connection
// and reads its own answer, and a server that answers each request with one
// write, cost a fraction of that (docs/benchmarks.md).
//
// Only what the model-runner protocol uses is implemented: unary calls,
// metadata, deadlines (grpc-timeout), status codes and messages, HTTP/2 flow
// control, PING, SETTINGS and GOAWAY, over plain TCP (h2c) or TLS with ALPN
// "h2". No streaming, compression or retries.
package grpcwire
