//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// peerOpen reports whether the other end of a pooled connection has not closed it (no EOF or
// error waiting to be read), with one non-blocking peek.
func peerOpen(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
			// nothing to read: the connection is idle and open
		case rerr != nil || n == 0:
			open = false // error or EOF
		default:
			open = false // bytes nobody asked for: the connection is out of step
		}
		return true
	})
	return err == nil && open
}
