package signing_test

import "net"

func netListenUnix(p string) (net.Listener, error) { return net.Listen("unix", p) }
