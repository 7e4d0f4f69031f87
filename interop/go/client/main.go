// Command client calls helloworld.Greeter/SayHello over TLS or mutual TLS with grpc-go.
//
// It prints the reply message on stdout and exits 0. On any failure it prints one line
// "ERROR <CODE>: <message>" (CODE is the canonical gRPC status name, e.g. UNAVAILABLE) and
// exits 1. Problems with the flags or files are reported as INVALID_ARGUMENT before any
// connection is made. Without --cert/--key it connects without a client certificate.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "grpcsec.dev/interop/helloworld"
)

var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

func fail(code codes.Code, message string) {
	name, ok := codeNames[code]
	if !ok {
		name = fmt.Sprintf("CODE_%d", uint32(code))
	}
	message = strings.Join(strings.Fields(message), " ") // always a single line
	fmt.Printf("ERROR %s: %s\n", name, message)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "server address, host:port (required)")
	caFile := flag.String("ca", "", "PEM file of the CA certificates to trust (required)")
	certFile := flag.String("cert", "", "PEM client certificate chain, leaf first (optional)")
	keyFile := flag.String("key", "", "PEM private key of --cert (required with --cert)")
	serverName := flag.String("server-name", "", "name to verify in the server certificate "+
		"(default: the host of --addr)")
	name := flag.String("name", "world", "name to send in HelloRequest")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of the call")
	flag.Parse()

	if *addr == "" || *caFile == "" {
		fail(codes.InvalidArgument, "--addr and --ca are required")
	}
	if (*certFile == "") != (*keyFile == "") {
		fail(codes.InvalidArgument, "--cert and --key go together")
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		fail(codes.InvalidArgument, "cannot read --ca: "+err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		fail(codes.InvalidArgument, "no PEM certificate in --ca "+*caFile)
	}
	config := &tls.Config{RootCAs: roots, ServerName: *serverName, MinVersion: tls.VersionTLS12}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail(codes.InvalidArgument, "cannot load --cert/--key: "+err.Error())
		}
		config.Certificates = []tls.Certificate{pair}
	}

	conn, err := grpc.Dial(*addr, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	if err != nil {
		fail(status.Code(err), err.Error())
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	reply, err := pb.NewGreeterClient(conn).SayHello(ctx, &pb.HelloRequest{Name: *name})
	if err != nil {
		st := status.Convert(err)
		conn.Close()
		cancel()
		fail(st.Code(), st.Message())
	}
	fmt.Println(reply.GetMessage())
}
