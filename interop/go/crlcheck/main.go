// Command crlcheck reads a CRL with Go's crypto/x509 (x509.ParseRevocationList) and checks
// its signature against a CA certificate (RevocationList.CheckSignatureFrom), so the tests can
// show that a CRL grpcsec publishes is accepted by an implementation nobody in this project
// wrote. With --serial it also says whether that serial is listed.
//
// It prints exactly one line and exits with:
//
//	0  "OK number=N entries=K next_update=RFC3339" (and, with --serial, "serial=HEX not-revoked")
//	1  "REFUSED: <why>"  the CRL does not parse or its signature does not verify with the CA
//	2  "USAGE: <why>"    bad flags or an unreadable or unparsable CA certificate
//	3  "REVOKED serial=HEX reason=N date=RFC3339"  the CRL verifies and lists --serial
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

func exit(code int, format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
	os.Exit(code)
}

// der returns the first PEM block of the given type, or the data itself when it is not PEM.
func der(data []byte, blockType string) []byte {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type == blockType {
			return block.Bytes
		}
		return nil
	}
	return data
}

func main() {
	crlPath := flag.String("crl", "", "CRL file (PEM or DER)")
	caPath := flag.String("ca", "", "CA certificate file (PEM; the first certificate is used)")
	serialHex := flag.String("serial", "", "a serial number (hex) to look up")
	flag.Parse()
	if *crlPath == "" || *caPath == "" {
		exit(2, "USAGE: --crl FILE and --ca FILE are required")
	}
	caData, err := os.ReadFile(*caPath)
	if err != nil {
		exit(2, "USAGE: cannot read --ca: %v", err)
	}
	ca, err := x509.ParseCertificate(der(caData, "CERTIFICATE"))
	if err != nil {
		exit(2, "USAGE: --ca is not a certificate: %v", err)
	}
	var serial *big.Int
	if *serialHex != "" {
		var ok bool
		serial, ok = new(big.Int).SetString(strings.TrimPrefix(*serialHex, "0x"), 16)
		if !ok {
			exit(2, "USAGE: --serial is not hex: %q", *serialHex)
		}
	}
	crlData, err := os.ReadFile(*crlPath)
	if err != nil {
		exit(2, "USAGE: cannot read --crl: %v", err)
	}
	crl, err := x509.ParseRevocationList(der(crlData, "X509 CRL"))
	if err != nil {
		exit(1, "REFUSED: not a CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		exit(1, "REFUSED: signature: %v", err)
	}
	if serial != nil {
		for _, entry := range crl.RevokedCertificates {
			if entry.SerialNumber.Cmp(serial) == 0 {
				reason := -1
				for _, ext := range entry.Extensions {
					// id-ce-cRLReasons (2.5.29.21): an ENUMERATED, last byte is the code
					if ext.Id.String() == "2.5.29.21" && len(ext.Value) == 3 {
						reason = int(ext.Value[2])
					}
				}
				exit(3, "REVOKED serial=%x reason=%d date=%s", serial, reason,
					entry.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	line := fmt.Sprintf("OK number=%v entries=%d next_update=%s", crl.Number,
		len(crl.RevokedCertificates), crl.NextUpdate.UTC().Format(time.RFC3339))
	if serial != nil {
		line += fmt.Sprintf(" serial=%x not-revoked", serial)
	}
	exit(0, "%s", line)
}
