// Package mrpb holds the Go code generated from the model-runner protocol
// files in ../proto. Do not edit the *.pb.go files; run
// `go generate ./internal/modelrunner/...` instead (needs protoc on PATH; the
// plugins are the module's declared tools, so their versions follow go.mod).
package mrpb

//go:generate sh -c "protoc -I ../proto --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=../../.. --go_opt=module=github.com/crunchnode/crunch-node --go-grpc_out=../../.. --go-grpc_opt=module=github.com/crunchnode/crunch-node crunchdao/modelrunner/v1/commons.proto crunchdao/modelrunner/v1/dynamic_subclass.proto"
