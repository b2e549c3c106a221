"""The embedded CPU simulator: lights, background traffic, pedestrians and their assembly."""
