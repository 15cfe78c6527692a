package firmware

import "syscall"

// childAttr makes the kernel kill the gateway when its launcher dies (a
// kill -9 of the launcher must not leave a gateway holding the buffer and
// the HTTP port while the next launcher starts another).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
