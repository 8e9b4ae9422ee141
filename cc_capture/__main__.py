from cc_capture.cli.main import main

if __name__ == "__main__":
    main()
