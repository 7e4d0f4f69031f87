// Command server serves helloworld.Greeter over mutual TLS with grpc-go.
//
// It requires and verifies a client certificate issued by --client-ca, accepts TLS 1.2 and
// later only, prints "listening on HOST:PORT" once the socket is listening, and answers
// "Hello <name> (from <identity>)", the identity being the client certificate's subject CN, or
// its first URI SAN when it has no CN. SIGTERM or SIGINT stops it gracefully (exit 0).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "grpcsec.dev/interop/helloworld"
)

type greeter struct {
	pb.UnimplementedGreeterServer
}

func clientIdentity(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	leaf := info.State.VerifiedChains[0][0]
	if leaf.Subject.CommonName != "" {
		return leaf.Subject.CommonName, true
	}
	if len(leaf.URIs) > 0 {
		return leaf.URIs[0].String(), true
	}
	return "", false
}

func (greeter) SayHello(ctx context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	identity, ok := clientIdentity(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no verified client certificate identity")
	}
	return &pb.HelloReply{Message: fmt.Sprintf("Hello %s (from %s)", req.GetName(), identity)}, nil
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "server: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("cert", "", "PEM server certificate chain, leaf first (required)")
	keyFile := flag.String("key", "", "PEM private key of --cert (required)")
	clientCA := flag.String("client-ca", "", "PEM CA certificates that issue client certs (required)")
	flag.Parse()

	if *certFile == "" || *keyFile == "" || *clientCA == "" {
		die("--cert, --key and --client-ca are required")
	}
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		die("cannot load --cert/--key: %v", err)
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		die("cannot read --client-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		die("no PEM certificate in --client-ca %s", *clientCA)
	}
	config := &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		die("cannot listen on %s: %v", *listen, err)
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(config)))
	pb.RegisterGreeterServer(server, greeter{})

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- server.Serve(lis) }()
	fmt.Printf("listening on %s\n", lis.Addr().String())

	select {
	case <-signals:
		stopped := make(chan struct{})
		go func() { server.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			server.Stop()
		}
	case err := <-served:
		if err != nil {
			die("serve: %v", err)
		}
	}
}
