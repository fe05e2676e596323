"""The warehouse side: running models, point-in-time joins, training sets."""
