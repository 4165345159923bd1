package main

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/signing"
)

type signOptions struct {
	key           string
	signature     string
	cert          string
	certChain     []string
	serialization string
	shardSize     int64
	ignorePaths   []string
	allowSymlinks bool
}

func newSignCmd(g *globals) *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:   "sign DIR --key PEM [--signature OUT] [--cert PEM --cert-chain PEM]",
		Short: "Sign a model directory or file (OpenSSF Model Signing format)",
		Long: `Sign hashes every file of a model (SHA-256 per file, or per shard with --serialization
shards) and writes an OpenSSF Model Signing signature: a Sigstore bundle v0.3 whose DSSE
envelope carries an in-toto statement listing every file and its digest. model_signing
(sigstore/model-transparency) verifies it, and so does 'pipewarden verify'.

The key is an ECDSA P-256, P-384 or P-521 private key (SEC1 or PKCS#8 PEM). With --cert the
signature carries the signing certificate and the --cert-chain certificates, for verification
against a CA; without it, a hint of the public key.

The signature goes to DIR/model.sig (FILE.sig for a single-file model) unless --signature says
otherwise; it is left out of the manifest, as are .git, .gitattributes, .github, .gitignore and
the --ignore-paths (relative to the current directory, or absolute). Symbolic links are refused
unless --allow-symlinks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd, g, args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "ECDSA private key (PEM, SEC1 or PKCS#8)")
	f.StringVar(&o.signature, "signature", "", "where to write the signature (default DIR/model.sig)")
	f.StringVar(&o.cert, "cert", "", "signing certificate (PEM) for the key")
	f.StringArrayVar(&o.certChain, "cert-chain", nil, "intermediate certificates to include (PEM; repeatable)")
	f.StringVar(&o.serialization, "serialization", signing.MethodFiles, "files (one digest per file) or shards")
	f.Int64Var(&o.shardSize, "shard-size", signing.DefaultShardSize, "shard size in bytes for --serialization shards")
	f.StringArrayVar(&o.ignorePaths, "ignore-paths", nil, "paths to leave out of the signature (repeatable)")
	f.BoolVar(&o.allowSymlinks, "allow-symlinks", false, "follow symbolic links instead of refusing them")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runSign(cmd *cobra.Command, g *globals, model string, o *signOptions) error {
	if o.serialization != signing.MethodFiles && o.serialization != signing.MethodShards {
		return usageErr("--serialization %q: want files or shards", o.serialization)
	}
	if o.shardSize <= 0 {
		return usageErr("--shard-size %d: must be positive", o.shardSize)
	}
	if len(o.certChain) > 0 && o.cert == "" {
		return usageErr("--cert-chain needs --cert")
	}
	fi, err := os.Stat(model)
	if err != nil {
		return usageErr("%s: %v", model, err)
	}
	keyPEM, err := os.ReadFile(o.key)
	if err != nil {
		return usageErr("%s: %v", o.key, err)
	}
	key, err := signing.LoadPrivateKey(keyPEM)
	if err != nil {
		return usageErr("%s: %v", o.key, err)
	}
	var signer signing.Signer = signing.NewKeySigner(key)
	if o.cert != "" {
		certs, err := loadCertFile(o.cert)
		if err != nil {
			return err
		}
		var chain []*x509.Certificate
		for _, p := range o.certChain {
			cs, err := loadCertFile(p)
			if err != nil {
				return err
			}
			chain = append(chain, cs...)
		}
		if signer, err = signing.NewCertificateSigner(key, certs[0], chain); err != nil {
			return usageErr("%s: %v", o.cert, err)
		}
	}

	sigPath := o.signature
	if sigPath == "" {
		sigPath = filepath.Join(model, "model.sig")
		if !fi.IsDir() {
			sigPath = model + ".sig"
		}
	}
	ignore, err := signing.ResolveIgnorePaths(model, append(append([]string(nil), o.ignorePaths...), sigPath))
	if err != nil {
		return usageErr("%s: %v", model, err)
	}
	out, m, err := signing.SignDir(cmd.Context(), model, signer, signing.Options{
		Method: o.serialization, ShardSize: o.shardSize, IgnorePaths: ignore, AllowSymlinks: o.allowSymlinks,
	})
	var te *signing.TreeError
	if errors.As(err, &te) {
		return usageErr("%v (nothing was signed)", err)
	}
	if err != nil {
		return usageErr("%v", err) // names the model
	}
	if err := os.WriteFile(sigPath, out, 0o644); err != nil {
		return usageErr("%s: %v", sigPath, err)
	}
	_, err = fmt.Fprintf(g.stdout, "signed %s: %d resource(s), root digest sha256:%s, signature %s\n",
		model, len(m.Resources), hex.EncodeToString(m.RootDigest()), sigPath)
	return err
}
