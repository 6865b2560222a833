"""The working directory every stage reads through: the store's read side and the path of every handoff file."""
