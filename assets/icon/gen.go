//go:build ignore

// Command gen draws the application icon, assets/icon/madoguchi.png: a counter window (窓口)
// seen from the front: a white window frame with four panes on a deep blue rounded square.
//
// Run from the module root: go run ./assets/icon/gen.go
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
)

const size = 256

func main() {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	blue := color.NRGBA{R: 0x1f, G: 0x4e, B: 0x8c, A: 0xff}
	white := color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	pane := color.NRGBA{R: 0xa8, G: 0xd0, B: 0xf0, A: 0xff}
	const radius = 48
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if insideRounded(x, y, radius) {
				img.Set(x, y, blue)
			}
		}
	}
	fill(img, 48, 40, 208, 200, white)  // window frame
	fill(img, 60, 52, 196, 188, pane)   // glass
	fill(img, 122, 52, 134, 188, white) // vertical mullion
	fill(img, 60, 114, 196, 126, white) // horizontal transom
	fill(img, 32, 200, 224, 216, white) // the counter
	out, err := os.Create("assets/icon/madoguchi.png")
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(out, img); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
}

func fill(img *image.NRGBA, x0, y0, x1, y1 int, c color.NRGBA) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.Set(x, y, c)
		}
	}
}

// insideRounded reports whether pixel (x, y) lies inside the icon's rounded square.
func insideRounded(x, y, r int) bool {
	cx, cy := x, y
	switch {
	case x < r:
		cx = r
	case x >= size-r:
		cx = size - r - 1
	}
	switch {
	case y < r:
		cy = r
	case y >= size-r:
		cy = size - r - 1
	}
	dx, dy := x-cx, y-cy
	return dx*dx+dy*dy <= r*r
}
