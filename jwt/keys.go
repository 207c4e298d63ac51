package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// kind is the type of a verification key. Each kind accepts exactly one
// algorithm: the key decides the algorithm, never the token's header.
type kind uint8

const (
	kindHMAC    kind = iota + 1 // []byte, HS256
	kindRSA                     // *rsa.PublicKey, RS256
	kindECDSA                   // *ecdsa.PublicKey on P-256, ES256
	kindEd25519                 // ed25519.PublicKey, EdDSA
)

// alg returns the one JWS algorithm a key of kind k verifies.
func (k kind) alg() string {
	switch k {
	case kindHMAC:
		return "HS256"
	case kindRSA:
		return "RS256"
	case kindECDSA:
		return "ES256"
	case kindEd25519:
		return "EdDSA"
	}
	return ""
}

// minRSABits is the smallest RSA modulus accepted, from PEM or from a JWKS.
const minRSABits = 2048

// minSecretLen is the smallest HS256 secret accepted: 256 bits, the size of
// the hash (RFC 7518 section 3.2).
const minSecretLen = 32

// key is one verification key.
type key struct {
	kind kind
	kid  string // "" for keys from Config.Secret and Config.PublicKeys
	key  any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// publicKey classifies a parsed public key. It refuses key types and sizes
// this package does not verify with.
func publicKey(pub any) (kind, any, error) {
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if n := pk.N.BitLen(); n < minRSABits {
			return 0, nil, fmt.Errorf("RSA key is %d bits; at least %d are needed", n, minRSABits)
		}
		return kindRSA, pk, nil
	case *ecdsa.PublicKey:
		if pk.Curve != elliptic.P256() {
			return 0, nil, fmt.Errorf("ECDSA key is on curve %s; only P-256 (ES256) is supported", pk.Curve.Params().Name)
		}
		return kindECDSA, pk, nil
	case ed25519.PublicKey:
		return kindEd25519, pk, nil
	}
	return 0, nil, fmt.Errorf("unsupported public key type %T; use RSA, ECDSA P-256 or Ed25519", pub)
}

// parsePEM parses one PEM-encoded public key: a PKIX "PUBLIC KEY", a PKCS #1
// "RSA PUBLIC KEY" or an X.509 "CERTIFICATE" (whose key is used; the
// certificate's validity and chain are not checked).
func parsePEM(data []byte) (key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return key{}, fmt.Errorf("no PEM block found")
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return key{}, fmt.Errorf("more than one PEM block; give one key per entry")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return key{}, fmt.Errorf("PEM block is a %s; give the public key", block.Type)
	default:
		return key{}, fmt.Errorf("unsupported PEM block %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return key{}, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	k, pk, err := publicKey(pub)
	if err != nil {
		return key{}, err
	}
	return key{kind: k, key: pk}, nil
}
