// Command load drives unary calls of one method over one long-lived (m)TLS connection with
// grpc-go, for benchmarks/server.py: a caller that costs the machine far less CPU per call than
// a Python one, so the server's own cost shows.
//
// It connects once, then reads commands on stdin, one per line: "run SECONDS" makes calls
// back to back from --concurrency goroutines for SECONDS and prints one JSON line
// {"calls":N,"failures":N,"seconds":S,"p50_ms":X,"p99_ms":Y,"first_error":"..."}; end of input
// ends the program. The request is --payload as raw bytes (no protobuf) and the reply must be
// the same bytes, else the call counts as a failure. Bad flags or files: one line
// "ERROR <message>" and exit 2.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// rawCodec sends and receives *[]byte as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "raw" }

type result struct {
	Calls      int     `json:"calls"`
	Failures   int     `json:"failures"`
	Seconds    float64 `json:"seconds"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func die(message string) {
	fmt.Println("ERROR " + strings.Join(strings.Fields(message), " "))
	os.Exit(2)
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(q * float64(len(sorted)-1))
	return float64(sorted[index].Microseconds()) / 1000
}

func run(conn *grpc.ClientConn, method string, payload []byte, ctx context.Context,
	workers int, seconds float64, timeout time.Duration) result {
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var mu sync.Mutex
	var latencies []time.Duration
	failures := 0
	firstError := ""
	var wg sync.WaitGroup
	started := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			failed := 0
			firstMine := ""
			for time.Now().Before(deadline) {
				callCtx, cancel := context.WithTimeout(ctx, timeout)
				reply := []byte{}
				begin := time.Now()
				err := conn.Invoke(callCtx, method, &payload, &reply, grpc.ForceCodec(rawCodec{}))
				elapsed := time.Since(begin)
				cancel()
				if err == nil && !bytes.Equal(reply, payload) {
					err = fmt.Errorf("wrong reply of %d bytes", len(reply))
				}
				if err != nil {
					failed++
					if firstMine == "" {
						firstMine = err.Error()
					}
					continue
				}
				mine = append(mine, elapsed)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			failures += failed
			if firstError == "" {
				firstError = firstMine
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(started).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return result{
		Calls: len(latencies), Failures: failures, Seconds: wall,
		P50Ms: percentile(latencies, 0.5), P99Ms: percentile(latencies, 0.99),
		FirstError: firstError,
	}
}

func main() {
	addr := flag.String("addr", "", "server address, host:port (required)")
	caFile := flag.String("ca", "", "PEM file of the CA certificates to trust (required)")
	certFile := flag.String("cert", "", "PEM client certificate chain, leaf first (optional)")
	keyFile := flag.String("key", "", "PEM private key of --cert (required with --cert)")
	serverName := flag.String("server-name", "localhost", "name to verify in the server certificate")
	method := flag.String("method", "", "full method path, /package.Service/Method (required)")
	payload := flag.String("payload", "ping", "request bytes; the reply must equal them")
	tokenFile := flag.String("token-file", "", "file holding a bearer token to send as "+
		"'authorization: Bearer <token>' (a file, not a flag: flags show in the process list)")
	concurrency := flag.Int("concurrency", 1, "goroutines calling back to back (1: sequential)")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	flag.Parse()

	if *addr == "" || *caFile == "" || *method == "" {
		die("--addr, --ca and --method are required")
	}
	if (*certFile == "") != (*keyFile == "") {
		die("--cert and --key go together")
	}
	if *concurrency < 1 {
		die("--concurrency must be at least 1")
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		die("cannot read --ca: " + err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		die("no PEM certificate in --ca " + *caFile)
	}
	config := &tls.Config{RootCAs: roots, ServerName: *serverName, MinVersion: tls.VersionTLS12}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			die("cannot load --cert/--key: " + err.Error())
		}
		config.Certificates = []tls.Certificate{pair}
	}
	conn, err := grpc.Dial(*addr, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	if err != nil {
		die("cannot dial: " + err.Error())
	}
	defer conn.Close()
	ctx := context.Background()
	if *tokenFile != "" {
		token, err := os.ReadFile(*tokenFile)
		if err != nil {
			die("cannot read --token-file: " + err.Error())
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization",
			"Bearer "+strings.TrimSpace(string(token)))
	}

	input := bufio.NewScanner(os.Stdin)
	output := json.NewEncoder(os.Stdout)
	for input.Scan() {
		fields := strings.Fields(input.Text())
		if len(fields) != 2 || fields[0] != "run" {
			die("unknown command " + strconv.Quote(input.Text()) + " (expected: run SECONDS)")
		}
		seconds, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || seconds <= 0 || seconds > 600 {
			die("run: SECONDS must be a number in (0, 600]")
		}
		if err := output.Encode(run(conn, *method, []byte(*payload), ctx, *concurrency, seconds,
			*timeout)); err != nil {
			die("cannot write the result: " + err.Error())
		}
	}
}
