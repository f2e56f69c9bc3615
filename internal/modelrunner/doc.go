// Package modelrunner is the coordinator's side of CrunchDAO's model-runner
// protocol: it finds participant models, keeps a gRPC client per model, and
// calls a method on all of them at once.
//
// The pieces, from the wire up:
//
//   - mrpb: Go code generated from our own copy of the protocol (proto/),
//     with the upstream proto packages, service and field numbers.
//   - grpcwire (internal/grpcwire): the gRPC transport. Each model gets one
//     HTTP/2 connection for calls and one for health checks; the calling
//     goroutine writes its request and reads its own answer, a fraction of
//     grpc-go's CPU per call, which a 100-model fan-out on two cores needs.
//   - variant: the (type tag, bytes) value encoding, including Python's
//     NaN/Infinity JSON.
//   - Client: one model run. At most one call in flight (the model runner
//     refuses a second one), a deadline per call, and the bookkeeping that
//     decides when to give up on a model: consecutive failures and timeouts,
//     a cooldown after timeouts, health checks on a separate connection, and
//     failure reports (BAD_IMPLEMENTATION, CONNECTION_FAILED, MULTIPLE_FAILED,
//     MULTIPLE_TIMEOUT).
//   - Runner: one Client per RUNNING model, reconciled from Source snapshots;
//     Call fans out to every ready model concurrently and returns one Result
//     per model (SUCCESS, FAILED or TIMEOUT, value, exec time, error).
//   - Source: where models come from. OrchestratorSource follows the model
//     orchestrator's WebSocket; StaticSource is a fixed list; LocalSource
//     starts model host processes from a models.dev.yml-style file. Sources
//     report snapshots through a callback and never touch the database; the
//     caller mirrors them into the models table.
//   - Security: insecure (default), Gateway (TLS plus per-RPC RSA-signed
//     headers) or Secure (mutual TLS against a private CA; every response
//     but health checks must carry the cruncher wallet's Ed25519 signature
//     over the server's TLS key, model id and hotkey, else the model is
//     reported CONNECTION_FAILED).
//   - modelhost: a Go model runner with example models and fault injection,
//     for tests, benchmarks and local development (crunch-node model-server).
//
// Differences from the Python client, on purpose: Setup has a deadline;
// connects and Setups run in the background, so a slow model never holds up
// discovery; the health connection is dialled on its first check rather than at
// Setup; health checks after timeouts run in the background and count
// the timeout either way; an answer over the size limit is a FAILED result
// (the model answered, badly) rather than a timeout; FAILED_PRECONDITION
// (the runner lost its instance) triggers a new Setup instead of a failure;
// and a model given up on is not called again until the source brings a new
// run of it.
package modelrunner
