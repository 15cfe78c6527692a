//go:build !linux

package firmware

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
