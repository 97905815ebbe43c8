package term

import (
	"context"
	"errors"
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

// echoSwitchedOff returns a channel closed once tty's echo is off (the
// reader has switched it off and is about to read), watching the
// terminal's state; it is never closed if echo stays on.
func echoSwitchedOff(t *testing.T, tty *os.File) <-chan struct{} {
	t.Helper()
	off := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for echoOn(tty) {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // the kernel has no echo-change event to wait on
			}
		}
		close(off)
	}()
	return off
}

// TestReadPasswordFromTerminal types the secret only once echo is off:
// ReadPassword returns it and restores echo.
func TestReadPasswordFromTerminal(t *testing.T) {
	controller, tty := openPTY(t)
	if !IsTerminal(tty) || !echoOn(tty) {
		t.Fatal("pts is not an echoing terminal")
	}
	off := echoSwitchedOff(t, tty)
	typed := make(chan error, 1)
	go func() {
		select {
		case <-off:
			_, err := controller.WriteString("s3cret\n")
			typed <- err
		case <-time.After(30 * time.Second):
			typed <- errors.New("echo was never switched off")
			_, _ = controller.WriteString("s3cret\n") // let ReadPassword return
		}
	}()
	got, err := ReadPassword(context.Background(), tty)
	if err != nil || got != "s3cret" {
		t.Fatalf("ReadPassword = %q, %v", got, err)
	}
	if err := <-typed; err != nil {
		t.Fatal(err)
	}
	if !echoOn(tty) {
		t.Error("echo not restored")
	}
}

// TestReadPasswordCancelled cancels once ReadPassword is reading (echo
// off): it returns context.Canceled and restores echo.
func TestReadPasswordCancelled(t *testing.T) {
	_, tty := openPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	off := echoSwitchedOff(t, tty)
	go func() {
		<-off
		cancel()
	}()
	if _, err := ReadPassword(ctx, tty); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !echoOn(tty) {
		t.Error("echo not restored after cancellation")
	}
}
