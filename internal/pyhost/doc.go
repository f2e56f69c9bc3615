// Package pyhost runs participants' Python models locally: a small model host written in
// Python, embedded in the binary, that serves CrunchDAO's model-runner protocol
// (dynamic_subclass.DynamicSubclassService Setup/Call/Rest plus grpc.health.v1.Health) for
// the model class found in a code directory.
//
// The upstream model-runner needs PyPI (grpcio ≥ 1.69, pandas, pyarrow, …); this host
// needs only Debian's python3-grpcio and python3-protobuf, so the challenge's example
// models run on a plain Debian machine. Its semantics are those of the Go model host
// (internal/modelrunner/modelhost): the status strings, idempotent Setup, keyword
// filtering by signature, one call at a time with RESOURCE_EXHAUSTED "Server busy" for a
// second one. It is for development only; production models run in CrunchDAO's image.
//
// # Finding the model class
//
// Setup names a base class (MODEL_BASE_CLASSNAME, default cruncher.ModelBaseClass). The
// host puts the model's code directory first on sys.path (then any --path directories),
// imports the base class's module, walks every module of the code directory in name order
// and instantiates the first concrete subclass defined there. So `cruncher` is imported
// from the code directory: a submission carries its own cruncher.py next to main.py,
// exactly the layout CrunchDAO's runner expects, and `--path DIR` (a model's `args` in
// models.dev.yml) can supply a challenge package instead.
//
// # Layout
//
// host/main.py is the entry point; host/crunchnode_pyhost holds the server; host/pb holds
// the protocol's *_pb2.py message modules, generated from ../modelrunner/proto with plain
// `protoc --python_out` (no grpc_tools: the service is registered by hand with
// grpc.method_handlers_generic_handler). Regenerate them with `go generate
// ./internal/pyhost` after changing the .proto files; a test fails while they are stale.
package pyhost

//go:generate protoc -I ../modelrunner/proto --python_out=host/pb crunchdao/modelrunner/v1/commons.proto crunchdao/modelrunner/v1/dynamic_subclass.proto
