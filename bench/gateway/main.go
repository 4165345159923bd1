// Command gateway holds the helpers of bench/gateway/run.sh: a stand-in KServe model server, a
// bare httputil.ReverseProxy to compare against, a TCP relay (the least any Go process in the
// path adds: no HTTP at all), and the generator of the 6 KB request body and of the baseline the
// gateway's drift detector uses.
//
//	go run ./bench/gateway upstream -listen 127.0.0.1:18080
//	go run ./bench/gateway bare -listen 127.0.0.1:18081 -upstream http://127.0.0.1:18080
//	go run ./bench/gateway relay -listen 127.0.0.1:18087 -upstream http://127.0.0.1:18080
//	go run ./bench/gateway body -out body.json -baseline baseline.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gateway upstream|bare|relay|body [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18080", "listen address")
	up := fs.String("upstream", "http://127.0.0.1:18080", "upstream URL (bare)")
	out := fs.String("out", "body.json", "request body file (body)")
	base := fs.String("baseline", "baseline.json", "baseline file (body)")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "upstream":
		resp := []byte(`{"model_name":"bench","outputs":[{"name":"p","shape":[1,3],"datatype":"FP32","data":[0.1,0.7,0.2]}]}`)
		log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(resp)
		})))
	case "bare":
		u, err := url.Parse(*up)
		if err != nil {
			log.Fatal(err)
		}
		p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		log.Fatal(http.ListenAndServe(*listen, p))
	case "relay":
		u, err := url.Parse(*up)
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(relay(*listen, u.Host))
	case "body":
		if err := writeBody(*out, *base); err != nil {
			log.Fatal(err)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: gateway upstream|bare|relay|body [flags]")
		os.Exit(2)
	}
}

// relay copies bytes between each client connection and a connection of its own to upstream,
// both ways: one process hop with no HTTP work.
func relay(listen, upstream string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { io.Copy(u, c); u.Close() }()
			io.Copy(c, u)
		}()
	}
}

// writeBody writes a seeded 6 KB KServe v2 request (one row of 13 features, the rest as extra
// rows so that the body is a realistic batch of shortest-representation doubles) and a matching
// simple baseline.
func writeBody(out, base string) error {
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []byte
	n := 0
	for len(vals) < 6*1024-120 || n%13 != 0 {
		if n > 0 {
			vals = append(vals, ',')
		}
		vals = strconv.AppendFloat(vals, rng.NormFloat64()*10, 'g', -1, 64)
		n++
	}
	body := `{"id":"bench","inputs":[{"name":"input-0","shape":[` + strconv.Itoa(n/13) + `,13],"datatype":"FP64","data":[` + string(vals) + `]}]}`
	if err := os.WriteFile(out, []byte(body), 0o644); err != nil {
		return err
	}
	var fs []map[string]any
	for j := range 13 {
		fs = append(fs, map[string]any{"name": fmt.Sprintf("f%d", j), "mean": 0, "std": 10, "min": -45, "max": 45})
	}
	raw, _ := json.MarshalIndent(map[string]any{"features": fs}, "", " ")
	fmt.Printf("body: %d bytes, %d rows of 13 features\n", len(body), n/13)
	return os.WriteFile(base, raw, 0o644)
}
