package datasetspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxNameBytes bounds a safe class name; file names add an attempt number
// and an extension and stay well under the 255 bytes of common file
// systems.
const maxNameBytes = 96

// reserved are names Windows refuses for files and folders, whatever the
// extension.
var reserved = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true}

// SafeName turns a class name into a folder and file-name stem that every
// common file system and tool accepts: ASCII letters, digits, '_' and '-'
// only (no dots, so it is also a WebDataset key prefix), no leading '-'
// or '_', no Windows device name, at most 96 bytes (a long name keeps a
// hash of the whole so that two long names stay apart), never empty.
// "001.Red_crowned Hookbill" becomes "001_Red_crowned_Hookbill".
func SafeName(name string) string {
	var b strings.Builder
	lastUnderscore := false
	for _, r := range name {
		ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
		switch {
		case ok:
			b.WriteRune(r)
			lastUnderscore = false
		case !lastUnderscore:
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	s := strings.Trim(b.String(), "_-")
	if s == "" {
		s = "class"
	}
	if len(s) > maxNameBytes {
		sum := sha256.Sum256([]byte(name))
		s = strings.TrimRight(s[:maxNameBytes-9], "_-") + "_" + hex.EncodeToString(sum[:4])
	}
	if reserved[strings.ToUpper(s)] {
		s += "_"
	}
	return s
}

// safeNames gives each class a distinct safe name. Names that collide —
// also when compared without case, as macOS and Windows do — get a
// numeric suffix in the order given.
func safeNames(classes []string) map[string]string {
	res := make(map[string]string, len(classes))
	taken := map[string]bool{}
	for _, c := range classes {
		base := SafeName(c)
		s := base
		for n := 2; taken[strings.ToLower(s)]; n++ {
			s = fmt.Sprintf("%s_%d", base, n)
		}
		taken[strings.ToLower(s)] = true
		res[c] = s
	}
	return res
}
