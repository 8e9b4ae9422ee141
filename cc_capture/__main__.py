from cc_capture.cli.fast import main

if __name__ == "__main__":
    main()
