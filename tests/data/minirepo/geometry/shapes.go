// Package geometry computes areas and distances of simple shapes.
package geometry

import "math"

// Point is a location in the plane.
type Point struct {
	X, Y float64
}

// Distance returns the Euclidean distance between two points in the plane.
func Distance(a, b Point) float64 {
	dx := a.X - b.X
	dy := a.Y - b.Y
	return math.Sqrt(dx*dx + dy*dy)
}

// PolygonArea computes the area of a simple polygon with the shoelace formula.
func PolygonArea(points []Point) float64 {
	total := 0.0
	for i := range points {
		j := (i + 1) % len(points)
		total += points[i].X*points[j].Y - points[j].X*points[i].Y
	}
	return math.Abs(total) / 2
}

// Centroid returns the mean position of a set of points.
func Centroid(points []Point) Point {
	var sum Point
	for _, p := range points {
		sum.X += p.X
		sum.Y += p.Y
	}
	n := float64(len(points))
	return Point{sum.X / n, sum.Y / n}
}

// Scale multiplies both coordinates of the point by a factor.
func (p Point) Scale(factor float64) Point {
	return Point{
		X: p.X * factor,
		Y: p.Y * factor,
	}
}

// BoundingBox finds the smallest axis-aligned rectangle that holds every point.
func BoundingBox(points []Point) (Point, Point) {
	low, high := points[0], points[0]
	for _, p := range points[1:] {
		low.X, low.Y = math.Min(low.X, p.X), math.Min(low.Y, p.Y)
		high.X, high.Y = math.Max(high.X, p.X), math.Max(high.Y, p.Y)
	}
	return low, high
}
