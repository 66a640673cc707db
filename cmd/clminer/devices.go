package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"clminer/gpu/registry"
)

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list OpenCL platforms and devices and the CPU device, with the ids --device takes",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON array"}},
		Action: func(c *cli.Context) error {
			if _, err := newLogger(c, errWriter(c)); err != nil {
				return err
			}
			entries, clErr := registry.List()
			out := c.App.Writer
			if c.Bool("json") {
				doc := struct {
					Devices     []registry.Entry `json:"devices"`
					OpenCLError string           `json:"opencl_error,omitempty"`
				}{Devices: entries}
				if clErr != nil {
					doc.OpenCLError = clErr.Error()
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tNAME\tVENDOR / PLATFORM\tDRIVER\tCU\tMEM MiB\tVEC\tDETAIL")
			for _, e := range entries {
				vendor := e.Vendor
				if e.Platform != "" {
					vendor += " / " + e.Platform
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", e.ID, e.Type, e.Name, vendor, e.Driver,
					e.ComputeUnits, e.GlobalMemMiB, e.VectorWidth, e.Detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if clErr != nil {
				fmt.Fprintf(out, "\nNo OpenCL devices: %v\n", clErr)
			}
			ids, err := registry.Resolve("auto", entries)
			if err == nil {
				fmt.Fprintf(out, "\nmine uses by default: %v\n", ids)
			}
			return nil
		},
	}
}
