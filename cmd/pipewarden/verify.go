package main

import (
	"crypto/x509"
	"os"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/report"
	"github.com/pipewarden/pipewarden/internal/signing"
	"github.com/pipewarden/pipewarden/internal/signing/sigstore"
)

type verifyOptions struct {
	judge               judgeFlags
	signature           string
	key                 string
	certChain           []string
	trustedRoot         string
	identity            string
	issuer              string
	ignorePaths         []string
	ignoreUnsignedFiles bool
	allowSymlinks       bool
}

func newVerifyCmd(g *globals) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify DIR --signature SIG (--key PUB | --cert-chain CA.pem | --trusted-root F --identity ID --issuer URL)",
		Short: "Verify a model against its OpenSSF Model Signing signature",
		Long: `Verify checks an OpenSSF Model Signing signature (as written by 'pipewarden sign' or by
model_signing) and then the model's files against it, with the serialization the signature
records. Every changed, missing, unsigned or unverifiable file is a finding naming it; a
signature that does not verify is a critical finding.

Trust comes from --key (the signer's ECDSA public key, PEM), --cert-chain (the CA certificates
the signing certificate must chain to; repeatable), or, for keyless Sigstore bundles,
--trusted-root with --identity and --issuer.

The signature file, .git, .gitattributes, .github, .gitignore, the paths the signature records
and --ignore-paths (relative to the current directory, or absolute) are not compared.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, g, args[0], &o)
		},
	}
	o.judge.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.signature, "signature", "", "the signature file (Sigstore bundle)")
	f.StringVar(&o.key, "key", "", "the signer's public key (PEM)")
	f.StringArrayVar(&o.certChain, "cert-chain", nil, "trusted CA certificates (PEM; repeatable)")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted root JSON, for keyless bundles")
	f.StringVar(&o.identity, "identity", "", "expected signer identity (certificate SAN), with --trusted-root")
	f.StringVar(&o.issuer, "issuer", "", "expected OIDC issuer, with --trusted-root")
	f.StringArrayVar(&o.ignorePaths, "ignore-paths", nil, "paths not to compare (repeatable)")
	f.BoolVar(&o.ignoreUnsignedFiles, "ignore-unsigned-files", false, "do not report files the signature does not name")
	f.BoolVar(&o.allowSymlinks, "allow-symlinks", false, "follow symbolic links instead of refusing them")
	_ = cmd.MarkFlagRequired("signature")
	return cmd
}

func runVerify(cmd *cobra.Command, g *globals, model string, o *verifyOptions) error {
	if _, _, err := o.judge.parse(); err != nil {
		return err
	}
	modes := 0
	for _, set := range []bool{o.key != "", len(o.certChain) > 0, o.trustedRoot != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return usageErr("verify: give exactly one of --key, --cert-chain or --trusted-root")
	}
	if (o.identity != "" || o.issuer != "") && o.trustedRoot == "" {
		return usageErr("verify: --identity and --issuer go with --trusted-root")
	}
	if _, err := os.Stat(model); err != nil {
		return usageErr("%s: %v", model, err)
	}
	sig, err := os.ReadFile(o.signature)
	if err != nil {
		return usageErr("%s: %v", o.signature, err)
	}
	verifier, err := o.verifier()
	if err != nil {
		return err
	}
	ignore, err := signing.ResolveIgnorePaths(model, append(append([]string(nil), o.ignorePaths...), o.signature))
	if err != nil {
		return usageErr("%s: %v", model, err)
	}
	res, err := signing.VerifyDir(cmd.Context(), model, sig, verifier, signing.VerifyOptions{
		IgnorePaths: ignore, IgnoreUnsignedFiles: o.ignoreUnsignedFiles, AllowSymlinks: o.allowSymlinks,
	})
	if err != nil {
		return usageErr("%v", err) // names the model
	}
	extra := map[string]any{"verified": res.OK()}
	if res.Signer != "" {
		extra["signer"] = res.Signer
	}
	if res.Expected != nil {
		extra["serialization"] = res.Expected.Serialization.Method
		extra["signed_resources"] = len(res.Expected.Resources)
	}
	return o.judge.emit(g, &report.Report{
		Command: "verify", Inputs: []string{model, o.signature},
		Findings: res.Findings(), Extra: extra,
	})
}

// verifier builds the trust policy the flags name. Unreadable trust material is a usage error.
func (o *verifyOptions) verifier() (signing.Verifier, error) {
	switch {
	case o.key != "":
		b, err := os.ReadFile(o.key)
		if err != nil {
			return nil, usageErr("%s: %v", o.key, err)
		}
		pub, err := signing.LoadPublicKey(b)
		if err != nil {
			return nil, usageErr("%s: %v", o.key, err)
		}
		v, err := signing.NewKeyVerifier(pub)
		if err != nil {
			return nil, usageErr("%s: %v", o.key, err)
		}
		return v, nil
	case len(o.certChain) > 0:
		var trusted []*x509.Certificate
		for _, p := range o.certChain {
			cs, err := loadCertFile(p)
			if err != nil {
				return nil, err
			}
			trusted = append(trusted, cs...)
		}
		return signing.NewCertificateVerifier(trusted), nil
	default:
		return newSigstoreVerifier(o.trustedRoot, o.identity, o.issuer)
	}
}

func loadCertFile(p string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, usageErr("%s: %v", p, err)
	}
	cs, err := signing.LoadCertificates(b)
	if err != nil {
		return nil, usageErr("%s: %v", p, err)
	}
	return cs, nil
}

func newSigstoreVerifier(trustedRoot, identity, issuer string) (signing.Verifier, error) {
	if identity == "" || issuer == "" {
		return nil, usageErr("verify: --trusted-root needs --identity and --issuer (the signer's certificate identity and OIDC issuer)")
	}
	v, err := sigstore.NewVerifier(trustedRoot, identity, issuer)
	if err != nil {
		return nil, usageErr("%s: %v", trustedRoot, err)
	}
	return v, nil
}
