package modelhost

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// stopGrace bounds how long a stopping host waits for the running call.
const stopGrace = 5 * time.Second

// Run is the `crunch-node model-server` subcommand: it parses args, serves one
// example model on --host:--port until ctx ends, and returns ErrCrashed if the
// crash fault fired. The first line on stdout is
// "model-server listening on HOST:PORT", so a parent that passed --port 0 can
// learn the port.
//
// Flags: --model NAME (required; see ExampleNames), --port N (0 picks a free
// port), --host, --base-class, --constant-value, and the faults:
// --delay, --fail-times, --bad-implementation, --not-serving,
// --crash-on-call, --nan, --oversized-bytes.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model-server", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		baseClass = fs.String("base-class", "", "only accept Setup for this class name (default: any)")
		constant  = fs.Float64("constant-value", 0.5, "value predicted by the constant model")
		host      = fs.String("host", "127.0.0.1", "address to listen on")
		logLevel  = fs.String("log-level", "info", "debug, info, warn or error")
		model     = fs.String("model", "", "example model to host: constant, contrarian, mean-reversion or momentum")
		port      = fs.Int("port", 50051, "port to listen on (0 picks a free one)")
		faults    Faults
	)
	fs.BoolVar(&faults.BadImplementation, "bad-implementation", false, "fault: Setup answers BAD_IMPLEMENTATION")
	fs.IntVar(&faults.CrashOnCall, "crash-on-call", 0, "fault: exit abruptly when the Nth call arrives")
	fs.DurationVar(&faults.Delay, "delay", 0, "fault: hold every call this long")
	fs.IntVar(&faults.FailTimes, "fail-times", 0, "fault: the first N calls answer MODEL_FAILED")
	fs.BoolVar(&faults.NaN, "nan", false, `fault: predict answers {"value": NaN}`)
	fs.BoolVar(&faults.NotServing, "not-serving", false, "fault: health answers NOT_SERVING")
	fs.IntVar(&faults.OversizedBytes, "oversized-bytes", 0, "fault: predict answers at least this many bytes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed; nothing to serve
		}
		return fmt.Errorf("parsing model-server flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("model-server: unexpected arguments %q", fs.Args())
	}
	if *model == "" {
		return errors.New("model-server: --model is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("model-server: bad --log-level: %w", err)
	}
	factory, err := ExampleFactory(*model, ExampleOptions{ConstantValue: *constant})
	if err != nil {
		return fmt.Errorf("model-server: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level})).With(slog.String("model", *model))

	h, err := New(Config{BaseClass: *baseClass, Factory: factory, Faults: faults, Logger: logger})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("model-server: listening: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "model-server listening on %s\n", lis.Addr()); err != nil {
		return fmt.Errorf("model-server: writing address: %w", err)
	}

	served := make(chan error, 1)
	go func() { served <- h.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
		defer cancel()
		h.Stop(stopCtx)
		if err := <-served; err != nil {
			return err
		}
		return nil
	}
}
