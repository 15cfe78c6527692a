package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/fleet"
)

func init() { addCommand(newKeysCmd) }

// keyInfo is what `keys gen` and `keys show` print with -o json.
type keyInfo struct {
	KeyID       string `json:"key_id"`
	PublicKey   string `json:"public_key"`   // base64
	TrustedLine string `json:"trusted_line"` // the line for gateway.trusted_keys_file
	PrivateFile string `json:"private_key_file,omitempty"`
	PublicFile  string `json:"public_key_file,omitempty"`
}

func newKeysCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Make and show operator signing keys (ed25519)",
	}
	c.AddCommand(newKeysGenCmd(a), newKeysShowCmd(a))
	return c
}

func newKeysGenCmd(a *app) *cobra.Command {
	var out, name, comment string
	c := &cobra.Command{
		Use:   "gen --out DIR",
		Short: "Generate an operator key pair: DIR/NAME.key (private, mode 0600) and DIR/NAME.pub (the trusted-keys line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out: required")
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			k, err := fleet.GenerateKey()
			if err != nil {
				return err
			}
			priv, pub := filepath.Join(out, name+".key"), filepath.Join(out, name+".pub")
			if _, err := os.Stat(pub); err == nil {
				return fmt.Errorf("%s exists; not replacing it", pub)
			}
			if err := fleet.WritePrivateKey(priv, k); err != nil {
				return err
			}
			line := fleet.TrustedLine(k.Public(), comment)
			if err := os.WriteFile(pub, []byte(line+"\n"), 0o644); err != nil {
				return err
			}
			info := keyInfoOf(k, comment)
			info.PrivateFile, info.PublicFile = priv, pub
			if a.output == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "private key: %s (keep it secret; mode 0600)\n", priv)
			fmt.Fprintf(w, "public key:  %s\n", pub)
			fmt.Fprintf(w, "key ID:      %s\n\n", k.ID)
			fmt.Fprintf(w, "Add this line to each gateway's trusted-keys file (gateway.trusted_keys_file):\n%s\n", line)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory for the key files (created if needed)")
	c.Flags().StringVar(&name, "name", "operator", "base name of the key files")
	c.Flags().StringVar(&comment, "comment", "", "comment for the trusted-keys line (e.g. who holds the key)")
	return c
}

func newKeysShowCmd(a *app) *cobra.Command {
	var keyFile string
	c := &cobra.Command{
		Use:   "show --key FILE",
		Short: "Print the key ID and the trusted-keys line of a private key (or of a .pub file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("--key: required")
			}
			info, err := showKey(keyFile)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key ID: %s\n%s\n", info.KeyID, info.TrustedLine)
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "private key file (PEM PKCS #8 or base64), or a .pub trusted-keys line")
	return c
}

// showKey reads a private key, or a file of trusted-keys lines (the first
// key is shown).
func showKey(path string) (keyInfo, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return keyInfo{}, err
	}
	if keys, err := fleet.ParseTrustedKeys(data); err == nil && len(keys) > 0 {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && !strings.HasPrefix(f[0], "#") {
				k := keys[f[0]]
				return keyInfo{KeyID: k.ID, PublicKey: f[2], TrustedLine: fleet.TrustedLine(k.Key, k.Comment)}, nil
			}
		}
	}
	k, err := fleet.LoadPrivateKey(path)
	if err != nil {
		return keyInfo{}, err
	}
	return keyInfoOf(k, ""), nil
}

func keyInfoOf(k *fleet.PrivateKey, comment string) keyInfo {
	line := fleet.TrustedLine(k.Public(), comment)
	return keyInfo{KeyID: k.ID, PublicKey: strings.Fields(line)[2], TrustedLine: line}
}
