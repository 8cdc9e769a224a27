package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestPKIDefaults(t *testing.T) {
	d, err := Load([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	want := PKI{Algorithm: AlgorithmECDSAP256, CAValidity: 87600 * time.Hour, Validity: 8760 * time.Hour, RenewBefore: 720 * time.Hour}
	if d.PKI != want {
		t.Errorf("defaults %+v, want %+v", d.PKI, want)
	}
	d, err = Load([]byte(base + "  pki: {algorithm: rsa-4096, ca_validity: 3650d, validity: 2160h, renew_before: 14d}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = PKI{Algorithm: AlgorithmRSA4096, CAValidity: 87600 * time.Hour, Validity: 2160 * time.Hour, RenewBefore: 336 * time.Hour}
	if d.PKI != want {
		t.Errorf("parsed %+v, want %+v", d.PKI, want)
	}
}

func TestPKIValidation(t *testing.T) {
	cases := []struct{ pki, want string }{
		{"{algorithm: dsa}", `kubernetes:pki:algorithm: "dsa" is not a key algorithm; use ecdsa-p256 (default), rsa-2048 or rsa-4096`},
		{"{validity: forever}", `kubernetes:pki:validity: "forever" is not a positive duration; write hours like 8760h`},
		{"{ca_validity: -5h}", `kubernetes:pki:ca_validity: "-5h" is not a positive duration`},
		{"{validity: 100000h}", "kubernetes:pki:validity: 100000h is longer than ca_validity 87600h; a certificate cannot outlive its CA"},
		{"{renew_before: 9000h}", "kubernetes:pki:renew_before: 9000h is not shorter than validity 8760h, so every run would reissue every certificate; use e.g. 730h"},
		{"{algoritm: rsa-2048}", `kubernetes:pki:algoritm: unknown field "algoritm"; correct its spelling or remove it (known: algorithm, ca_validity, validity, renew_before)`},
	}
	for _, c := range cases {
		_, err := Load([]byte(base + "  pki: " + c.pki + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pki %s: error %v, want %q", c.pki, err, c.want)
		}
	}
}
