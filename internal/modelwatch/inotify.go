package modelwatch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// notify is a Linux inotify instance read through the runtime poller, so Close wakes a blocked
// read.
type notify struct {
	mu     sync.Mutex
	fd     int
	f      *os.File
	closed bool
}

// notifyEvent is one inotify event; Name is empty for events about the watched directory itself.
type notifyEvent struct {
	Wd   int
	Mask uint32
	Name string
}

const (
	// dirMask is what a watched model directory reports.
	dirMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE |
		unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
		unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK
	// parentMask notices a model directory being replaced, removed or created.
	parentMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK
	// approvalsMask notices approvals written by another process.
	approvalsMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_ONLYDIR
)

func newNotify() (*notify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &notify{fd: fd, f: os.NewFile(uintptr(fd), "inotify")}, nil
}

func (n *notify) add(path string, mask uint32) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return -1, os.ErrClosed
	}
	wd, err := unix.InotifyAddWatch(n.fd, path, mask)
	if err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return -1, fmt.Errorf("watch %s: %w (raise fs.inotify.max_user_watches)", path, err)
		}
		return -1, fmt.Errorf("watch %s: %w", path, err)
	}
	return wd, nil
}

func (n *notify) remove(wd int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		unix.InotifyRmWatch(n.fd, uint32(wd))
	}
}

// read blocks until events arrive or the instance is closed.
func (n *notify) read(buf []byte) ([]notifyEvent, error) {
	k, err := n.f.Read(buf)
	if err != nil {
		return nil, err
	}
	return parseNotify(buf[:k]), nil
}

func (n *notify) close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.f.Close()
}

// parseNotify splits a read of the inotify descriptor into events; a truncated tail is dropped.
func parseNotify(b []byte) []notifyEvent {
	var out []notifyEvent
	for len(b) >= unix.SizeofInotifyEvent {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(raw.Len)
		if end > len(b) {
			break
		}
		name := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, notifyEvent{Wd: int(raw.Wd), Mask: raw.Mask, Name: string(name)})
		b = b[end:]
	}
	return out
}
