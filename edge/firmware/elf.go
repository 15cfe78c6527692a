package firmware

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// elfMachines are the ELF class and machine of each GOARCH.
var elfMachines = map[string]struct {
	class   byte   // 1: 32-bit, 2: 64-bit
	machine uint16 // e_machine
}{
	"amd64":   {2, 62},  // EM_X86_64
	"arm64":   {2, 183}, // EM_AARCH64
	"arm":     {1, 40},  // EM_ARM
	"386":     {1, 3},   // EM_386
	"riscv64": {2, 243}, // EM_RISCV
}

// checkELF checks that head (the first bytes of an image) is a
// little-endian executable ELF header for platform. GOARM variants share a
// header: the manifest's platform names the variant.
func checkELF(head []byte, platform string) error {
	arch := strings.Split(platform, "/")[1]
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("no ELF machine known for %s", platform)
	}
	if len(head) < 20 || string(head[:4]) != "\x7fELF" {
		return fmt.Errorf("the image is not an ELF file")
	}
	if head[5] != 1 {
		return fmt.Errorf("the image is a big-endian ELF file")
	}
	class, typ, machine := head[4], binary.LittleEndian.Uint16(head[16:]), binary.LittleEndian.Uint16(head[18:])
	if class != want.class || machine != want.machine {
		return fmt.Errorf("the image is an ELF file for machine %d (%d-bit); %s needs machine %d (%d-bit)",
			machine, 32*int(class), platform, want.machine, 32*int(want.class))
	}
	if typ != 2 && typ != 3 { // ET_EXEC, ET_DYN
		return fmt.Errorf("the image is an ELF file of type %d, not an executable", typ)
	}
	return nil
}
