package handlers

import (
	"fmt"
	"strconv"

	"github.com/openedx/mobile-auth-bff/admin"
)

// px is an SVG coordinate, written with one decimal.
type px float64

func (p px) String() string { return strconv.FormatFloat(float64(p), 'f', 1, 64) }

// chart is the geometry of a client's "share of JWT vs Bearer issued"
// chart: one 100% bar per bucket, JWT from the bottom, and a dashed line
// at the share the rollout controls aim at.
type chart struct {
	Width, Height       int
	Left, Right, LabelX px
	XLabelY             px
	Bars                []chartBar
	Grid                []gridLine
	XLabels             []xLabel
	HasTarget           bool
	Target              int // percent
	TargetY             px
}

type chartBar struct {
	X, W, JWTY, JWTH, BearerY, BearerH px
	Title                              string
}

type gridLine struct {
	Y, TextY px
	Label    string
}

type xLabel struct {
	X    px
	Text string
}

const (
	chartWidth, chartHeight = 760, 200
	plotLeft, plotRight     = 40.0, 750.0
	plotTop, plotBottom     = 10.0, 170.0
)

func newChart(cm admin.ClientMigration, bucket string) chart {
	plotH := plotBottom - plotTop
	c := chart{Width: chartWidth, Height: chartHeight, Left: plotLeft, Right: plotRight, LabelX: plotLeft - 6, XLabelY: chartHeight - 12}
	for _, f := range []float64{0, .5, 1} {
		y := plotBottom - f*plotH
		c.Grid = append(c.Grid, gridLine{Y: px(y), TextY: px(y + 3), Label: fmt.Sprintf("%.0f%%", f*100)})
	}
	n := len(cm.Series)
	if n == 0 {
		return c
	}
	slot := (plotRight - plotLeft) / float64(n)
	gap := 0.0
	if slot > 3 {
		gap = 1
	}
	layout := "2006-01-02 15:04"
	if bucket == admin.BucketDay {
		layout = "2006-01-02"
	}
	for i, b := range cm.Series {
		x := plotLeft + float64(i)*slot + gap/2
		bar := chartBar{X: px(x), W: px(slot - gap)}
		is := b.Issued
		if is.Total == 0 {
			bar.Title = b.Start.Format(layout) + " UTC: no tokens issued"
		} else {
			jwtH := float64(is.JWT) / float64(is.Total) * plotH
			bar.JWTY, bar.JWTH = px(plotBottom-jwtH), px(jwtH)
			bar.BearerY, bar.BearerH = px(plotTop), px(plotH-jwtH)
			bar.Title = fmt.Sprintf("%s UTC: %d JWT, %d Bearer (%s JWT)", b.Start.Format(layout), is.JWT, is.Bearer, formatShare(is.JWTShare))
		}
		c.Bars = append(c.Bars, bar)
	}
	c.XLabels = xLabels(cm.Series, bucket, slot)
	if r := cm.Rollout; r != nil {
		switch {
		case r.Restricted:
			c.Target = 100
		case !r.JWTEnabled:
			c.Target = 0
		case r.TokenType == "jwt":
			c.Target = 100
		default:
			c.Target = r.JWTRolloutPercent
		}
		c.HasTarget = true
		c.TargetY = px(plotBottom - float64(c.Target)/100*plotH)
	}
	return c
}

// xLabels labels at most about eight buckets, on round times.
func xLabels(series []admin.BucketStats, bucket string, slot float64) []xLabel {
	var out []xLabel
	if bucket == admin.BucketDay {
		step := 1
		for _, s := range []int{1, 2, 5, 7, 14, 30, 61} {
			step = s
			if len(series)/s <= 8 {
				break
			}
		}
		for i, b := range series {
			if i%step == 0 {
				out = append(out, xLabel{X: px(plotLeft + (float64(i)+.5)*slot), Text: b.Start.Format("Jan 02")})
			}
		}
		return out
	}
	step := 1
	for _, s := range []int{1, 2, 3, 6, 12, 24} {
		step = s
		if len(series)/s <= 8 {
			break
		}
	}
	for i, b := range series {
		if b.Start.Hour()%step != 0 {
			continue
		}
		text := b.Start.Format("15:04")
		if step >= 24 || (b.Start.Hour() == 0 && i > 0) {
			text = b.Start.Format("Jan 02")
		}
		out = append(out, xLabel{X: px(plotLeft + (float64(i)+.5)*slot), Text: text})
	}
	return out
}
