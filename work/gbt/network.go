package gbt

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/txscript/v2"
)

// networkParams maps the chain name a node reports in getblockchaininfo
// (Bitcoin Core: main, test, testnet4, signet, regtest; btcd: mainnet,
// testnet3, testnet4, signet, regtest, simnet) to address parameters. Every
// signet, custom ones included, shares the testnet address prefixes, so
// SigNetParams decodes their addresses.
func networkParams(chain string) (*chaincfg.Params, error) {
	switch strings.ToLower(chain) {
	case "main", "mainnet":
		return &chaincfg.MainNetParams, nil
	case "test", "testnet", "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "testnet4":
		return &chaincfg.TestNet4Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	}
	return nil, fmt.Errorf("the node reports chain %q, which clminer does not know", chain)
}

// CheckAddress is the syntax check done before anything connects: the
// address must decode on some network clminer knows.
func CheckAddress(addr string) error {
	if addr == "" {
		return fmt.Errorf("no payout address: give --coinbase-addr ADDR for a node URL")
	}
	for _, p := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams, &chaincfg.SimNetParams} {
		if a, err := address.DecodeAddress(addr, p); err == nil && a.IsForNet(p) {
			if _, err := txscript.PayToAddrScript(a); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("--coinbase-addr %q: not a Bitcoin address (base58 P2PKH/P2SH, bech32 P2WPKH/P2WSH or bech32m P2TR)", addr)
}

// payoutScript decodes addr for the node's network and returns the output
// script that pays it.
func payoutScript(addr, chain string) ([]byte, error) {
	params, err := networkParams(chain)
	if err != nil {
		return nil, err
	}
	a, err := address.DecodeAddress(addr, params)
	if err != nil || !a.IsForNet(params) {
		return nil, fmt.Errorf("--coinbase-addr %s is not an address of the node's network (%s): blocks would pay nobody; give an address of that network", addr, chain)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, fmt.Errorf("--coinbase-addr %s: %v", addr, err)
	}
	return s, nil
}

// signetRule: a signet node wants the signet rule in the template request.
func rulesFor(chain string) []string {
	if strings.ToLower(chain) == "signet" {
		return []string{"segwit", "signet"}
	}
	return []string{"segwit"}
}
