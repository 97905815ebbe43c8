package term

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nmp-project/nmp/internal/testenv"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal, or skips the test where none is available.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { testenv.Close(t, controller) })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { testenv.Close(t, tty) })
	return controller, tty
}

// echoOn reports whether f echoes input; an unreadable state counts as on.
func echoOn(f *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err != nil || tio.Lflag&unix.ECHO != 0
}

func TestReadPasswordFromTerminal(t *testing.T) {
	controller, tty := openPTY(t)
	if !IsTerminal(tty) || !echoOn(tty) {
		t.Fatal("pts is not an echoing terminal")
	}
	echoDuringRead := make(chan bool, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let ReadPassword switch echo off first
		echoDuringRead <- echoOn(tty)
		_, _ = controller.WriteString("s3cret\n")
	}()
	got, err := ReadPassword(context.Background(), tty)
	if err != nil || got != "s3cret" {
		t.Fatalf("ReadPassword = %q, %v", got, err)
	}
	if <-echoDuringRead {
		t.Error("echo was on while reading")
	}
	if !echoOn(tty) {
		t.Error("echo not restored")
	}
}

func TestReadPasswordCancelled(t *testing.T) {
	_, tty := openPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := ReadPassword(ctx, tty); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !echoOn(tty) {
		t.Error("echo not restored after cancellation")
	}
}
