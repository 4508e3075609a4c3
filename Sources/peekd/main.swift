print("peekd")
